"""InboundEmailFunction: SES's receipt rule stored a message for the privacy address in the inbound
bucket; each record becomes a request, an item of the operator's inbox, or nothing (machine mail)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lethe.handlers.shell import start_function
from lethe.logic import inbound_email, intake

metrics = Metrics()
start_function()


@metrics.log_metrics
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    intake.IDEMPOTENCY.register_lambda_context(context)
    outcomes = []
    for notice in inbound_email.notices(event):
        received = inbound_email.receive(notice)
        metrics.add_metric(name=f"InboundMail_{received.outcome}", unit=MetricUnit.Count, value=1)
        outcomes.append(received.as_dict())
    return {"outcomes": outcomes}

"""VaultPurgeFunction: deletes isolated records whose purge date has passed and no hold covers."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lethe.data.models import bind_models
from lethe.logic import vault_purge
from lethe.settings import get_settings

logger = Logger()
metrics = Metrics()
bind_models(get_settings())


@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def handle(event: EventBridgeModel, context: Any) -> dict[str, Any]:
    # "Now" is the event's time, so a sample event dated ahead shows what would happen then.
    summary = vault_purge.purge_due(event.time)
    metrics.add_metric(name="VaultRecordsPurged", unit=MetricUnit.Count, value=summary.purged)
    metrics.add_metric(name="VaultRecordsKeptUnderHold", unit=MetricUnit.Count, value=summary.kept_under_hold)
    logger.info(
        "vault purge done",
        extra={"purged": summary.purged, "kept_under_hold": summary.kept_under_hold, "days": summary.days},
    )
    return summary.model_dump(mode="json")

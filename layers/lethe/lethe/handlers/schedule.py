"""The shell of a scheduled (EventBridge) run, apart from lethe.handlers.shell so that the API and queue
functions do not load the EventBridge parser."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel


def scheduled(run: Callable[[datetime], dict[str, Any]]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler of a scheduled run: the EventBridge event parsed, `run` called with the event's time
    ("now" is the event's time, so a sample event dated ahead shows what would happen then), and the
    metrics `run` added flushed when it returns or raises."""

    @Metrics().log_metrics
    @event_parser(model=EventBridgeModel)
    def handle(event: EventBridgeModel, context: Any) -> dict[str, Any]:
        return run(event.time)

    return handle

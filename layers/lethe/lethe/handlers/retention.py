"""RetentionFunction: the daily sweep's planner, one task per dataset shard or scan segment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lethe.data.models import bind_models
from lethe.logic import own_data, retention
from lethe.settings import get_settings

logger = Logger()
metrics = Metrics()
bind_models(get_settings())


@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def handle(event: EventBridgeModel, context: Any) -> dict[str, Any]:
    # "Now" is the event's time, so a sample event dated ahead shows what would happen then.
    summary = retention.start_run(event.time, send=retention.queue_tasks)
    metrics.add_metric(name="RetentionTasksPlanned", unit=MetricUnit.Count, value=summary.tasks)
    logger.info(
        "retention run planned",
        extra={"run_id": summary.run_id, "tasks": summary.tasks, "scan_datasets": summary.scan_datasets},
    )
    # Lethe's own requests table has a retention of its own: ended requests' contact details go.
    scrubbed = own_data.scrub_ended_requests(event.time)
    metrics.add_metric(name="RequestContactsScrubbed", unit=MetricUnit.Count, value=scrubbed)
    return {**summary.model_dump(mode="json"), "requests_scrubbed": scrubbed}

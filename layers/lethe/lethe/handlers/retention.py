"""RetentionFunction: the daily sweep's planner, one task per dataset shard or scan segment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lethe.handlers.schedule import scheduled
from lethe.handlers.shell import start_function
from lethe.logic import own_data, retention

logger = Logger()
metrics = Metrics()
start_function()


def run(now: datetime) -> dict[str, Any]:
    summary = retention.start_run(now, send=retention.queue_tasks)
    metrics.add_metric(name="RetentionTasksPlanned", unit=MetricUnit.Count, value=summary.tasks)
    logger.info(
        "retention run planned",
        extra={"run_id": summary.run_id, "tasks": summary.tasks, "scan_datasets": summary.scan_datasets},
    )
    # Lethe's own requests table has a retention of its own: ended requests' contact details go.
    scrubbed = own_data.scrub_ended_requests(now)
    metrics.add_metric(name="RequestContactsScrubbed", unit=MetricUnit.Count, value=scrubbed)
    return {**summary.model_dump(mode="json"), "requests_scrubbed": scrubbed}


handle = scheduled(run)

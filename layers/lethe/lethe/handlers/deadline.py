"""DeadlineFunction: digest of due and overdue requests, OverdueRequests metric, expiry of unverified requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from lethe.errors import RunIncomplete
from lethe.handlers.schedule import scheduled
from lethe.handlers.shell import start_function
from lethe.logic import deadline_watch

logger = Logger()
metrics = Metrics()
start_function()


def run(now: datetime) -> dict[str, Any]:
    summary = deadline_watch.watch(now)
    metrics.add_metric(name="OverdueRequests", unit=MetricUnit.Count, value=len(summary.overdue))
    metrics.add_metric(name="RequestsDueSoon", unit=MetricUnit.Count, value=len(summary.due_soon))
    metrics.add_metric(name="UnverifiedRequestsExpired", unit=MetricUnit.Count, value=summary.expired_unverified)
    for status, count in summary.open_by_status.items():
        # One metric per status value, for the dashboard's "requests by status" (a dimension each).
        with single_metric(
            name="RequestsByStatus", unit=MetricUnit.Count, value=count, default_dimensions=metrics.default_dimensions
        ) as by_status:
            by_status.add_dimension(name="status", value=status)
    logger.info(
        "deadline watch done",
        extra={
            "overdue": len(summary.overdue),
            "due_soon": len(summary.due_soon),
            "expired_unverified": summary.expired_unverified,
            "failed_jobs": summary.failed,
        },
    )
    if summary.failed:
        # The rest is done; failing the run makes the error alarm see it, and the next run retries.
        metrics.add_metric(name="DeadlineWatchJobsFailed", unit=MetricUnit.Count, value=len(summary.failed))
        raise RunIncomplete(f"deadline watch jobs failed: {', '.join(summary.failed)}")
    return summary.model_dump(mode="json")


handle = scheduled(run)

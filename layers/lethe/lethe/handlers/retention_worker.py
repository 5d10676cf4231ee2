"""RetentionWorkerFunction: applies retention to one dataset shard or scan segment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lethe.errors import RetentionTaskFailed
from lethe.handlers.shell import make_tracer, out_of_time, start_function
from lethe.logic import retention

start_function()
# One retention task per message; a failed one is reported alone and comes back on its own.
processor = BatchProcessor(event_type=EventType.SQS)
logger = Logger()
metrics = Metrics()
tracer = make_tracer()

# Leave a task this much time to finish its page, queue its continuation and write its audit record.
_RESERVE_MS = 120_000

_METRICS = {
    "ItemsDeleted": "deleted",
    "ItemsAnonymized": "anonymized",
    "ItemsIsolated": "isolated",
    "ItemsSkippedUnderHold": "skipped_under_hold",
    "ItemsSkippedRestricted": "skipped_restricted",
    "RetentionConflicts": "conflicts",
}


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    task = retention.RetentionTask.model_validate_json(record.body)

    try:
        outcome = retention.execute(task, out_of_time=out_of_time(lambda_context, _RESERVE_MS))
    except RetentionTaskFailed as failure:
        # Audit what was changed before the failure; the redelivery carries on with the rest.
        if any(failure.counts.values()):
            retention.record_failed_task(task, failure)
        raise
    # Audit before queueing the continuation: a redelivery after a failed queueing finds the work done
    # and records only what is new, and no continuation is queued twice.
    retention.record_task(outcome)
    if outcome.continuation is not None:
        retention.queue_tasks([outcome.continuation])  # retries a transient error itself
    # One flush per task, so each carries its own dataset dimension (names of datasets, never PII).
    metrics.add_dimension(name="dataset", value=task.dataset)
    for name, field in _METRICS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(outcome.counts, field))
    metrics.flush_metrics()
    logger.info(
        "retention task done",
        extra={"dataset": task.dataset, "path": task.path, "counts": outcome.counts.model_dump()},
    )


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> Any:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

"""RestoreReplayFunction: erases again what a restored backup brought back (lethe.logic.replay).

- An EventBridge event of a CloudTrail `RestoreTableToPointInTime` / `RestoreTableFromBackup` whose
  source is a dataset's table starts a replay job on the restored table.
- A ReplayQueue message (from that, or from `POST /admin/backups/replay`) runs one task of a job:
  a restore still in progress is looked at again later; a long table is carried on by the next task.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lethe.errors import RestoredTableNotFound
from lethe.handlers.shell import make_tracer, out_of_time, start_function
from lethe.logic import replay

start_function()
logger = Logger()
metrics = Metrics()
tracer = make_tracer()
processor = BatchProcessor(event_type=EventType.SQS)

# Leave a task this much time to save its job, queue its continuation and write its audit record.
_RESERVE_MS = 60_000


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    task = replay.ReplayTask.model_validate_json(record.body)

    job = replay.run_task(task, out_of_time=out_of_time(lambda_context, _RESERVE_MS))
    metrics.add_dimension(name="dataset", value=task.dataset)
    metrics.add_metric(name="ReplayItemsErasedAgain", unit=MetricUnit.Count, value=_erased(job.counts))
    metrics.flush_metrics()
    logger.info("replay task done", extra={"job_id": job.job_id, "dataset": task.dataset, "status": job.status})


def _erased(counts: replay.ReplayCounts) -> int:
    return counts.deleted + counts.anonymized + counts.isolated


def _started_by_restore(event: dict[str, Any]) -> dict[str, Any]:
    found = replay.restore_of(event)
    if found is None:
        logger.info("not a restore of a dataset table; nothing to replay")
        return {"job": None}
    dataset, table = found
    raw = event.get("time")
    now = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else datetime.now(UTC)
    name = (event.get("detail") or {}).get("eventName", "restore")
    try:
        job = replay.start_job(dataset, table, now=now, source=f"cloudtrail:{name}")
    except RestoredTableNotFound:
        # A restore that failed after it was called (CloudTrail logs the call): nothing came back.
        logger.warning("restored table not found; nothing to replay", extra={"dataset": dataset})
        return {"job": None}
    logger.info("replay job started for a restore", extra={"job_id": job.job_id, "dataset": dataset})
    return {"job": job.model_dump(mode="json")}


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> Any:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    return _started_by_restore(event)

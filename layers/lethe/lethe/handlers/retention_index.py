"""RetentionIndexFunction: one batch of a dataset table's DynamoDB stream (NEW_AND_OLD_IMAGES).

Each record's item gets its expiry attributes written or corrected when they are missing or no
longer true (lethe.logic.retention_index), and a write of an erased subject's data is flagged
(lethe.logic.recreation). A record that cannot be processed is reported as a
partial batch failure, so Lambda retries from it; the records before it stay applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from lethe.data import sweeps
from lethe.handlers.shell import make_tracer, start_function
from lethe.inventory import Dataset
from lethe.keys import key_ring
from lethe.logic import recreation, retention_index

logger = Logger()
metrics = Metrics()
tracer = make_tracer()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
start_function()

_METRICS = {"refiled": "ItemsRefiled", "conflict": "RefileConflicts"}


@lru_cache(maxsize=256)
def _seen(dataset: str, stream_arn: str, hour: str) -> None:
    """At most one ControlTable write per stream and hour: the retention report's proof of wiring."""
    from lethe.inventory import get_inventory

    sweeps.record_stream_seen(get_inventory().dataset(dataset), stream_arn, now=datetime.now(UTC))


class _Batch:
    """What one invocation shares between its records: the watermarks and the counts."""

    def __init__(self) -> None:
        self.watermarks = retention_index.Watermarks()
        self.counts: dict[tuple[str, str], int] = {}
        self.ring = key_ring()

    def record(self, record: DynamoDBRecord) -> None:
        arn = record.event_source_arn
        if not arn or record.dynamodb is None or record.event_name is None:
            raise ValueError("not a DynamoDB stream record")
        dataset: Dataset | None = retention_index.dataset_for_table(retention_index.table_of_stream(arn))
        if dataset is None:
            return  # a table no inventory dataset names: nothing of Lethe's to keep
        _seen(dataset.name, arn, datetime.now(UTC).strftime("%Y-%m-%dT%H"))
        images = record.dynamodb
        event = cast(retention_index.EventName, record.event_name.name)
        old, new = images.old_image or None, images.new_image or None
        self._count(dataset.name, retention_index.maintain(dataset, event, old, new, self.watermarks))
        created = images.approximate_creation_date_time
        seen_at = datetime.fromtimestamp(created, UTC) if created else datetime.now(UTC)
        sequence = images.sequence_number or record.event_id or ""
        flagged = recreation.check(dataset, event, old, new, sequence=sequence, seen_at=seen_at, ring=self.ring)
        if flagged is not None:
            self._count(dataset.name, "recreated")
            logger.warning("an erased subject's data was written again", extra={"dataset": dataset.name})

    def _count(self, dataset: str, outcome: str) -> None:
        self.counts[(dataset, outcome)] = self.counts.get((dataset, outcome), 0) + 1


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> Any:
    batch = _Batch()
    response = process_partial_response(event=event, record_handler=batch.record, processor=processor, context=context)
    for dataset in sorted({name for name, _ in batch.counts}):
        metrics.add_dimension(name="dataset", value=dataset)
        for outcome, metric in _METRICS.items():
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=batch.counts.get((dataset, outcome), 0))
        metrics.flush_metrics()
    # Without a dataset dimension, so one alarm watches every table.
    recreated = sum(n for (_, outcome), n in batch.counts.items() if outcome == "recreated")
    metrics.add_metric(name="ErasedSubjectRecreated", unit=MetricUnit.Count, value=recreated)
    metrics.flush_metrics()
    logger.info("stream batch done", extra={"counts": {f"{d}.{o}": n for (d, o), n in batch.counts.items()}})
    return response

"""ObjectIndexFunction: keeps the subject index of the inventory's S3 datasets.

- An EventBridge "Object Created" event (or an S3 notification's Records, as a bucket notification or
  a queue would deliver them): the object version is read once and an index entry written for each
  subject with a row in it (lethe.data.s3store.index_object). A redelivered event writes the same
  entries again, so it applies once.
- `{"backfill": "<dataset>"}`: the one-time backfill, indexing every object under the prefix.

Only counts are logged: no key of an object, as a key may itself name a person.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lethe.data import s3store
from lethe.errors import UnknownDataset
from lethe.handlers.shell import make_tracer, start_function
from lethe.inventory import get_inventory
from lethe.keys import key_ring

logger = Logger()
metrics = Metrics()
tracer = make_tracer()
start_function()


def _objects(event: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(bucket, key, version id) of every object the event says was created."""
    if event.get("detail-type") == "Object Created":
        detail = event.get("detail") or {}
        obj = detail.get("object") or {}
        return [(str(detail["bucket"]["name"]), str(obj["key"]), obj.get("version-id"))]
    found = []
    for record in event.get("Records") or []:
        s3 = record.get("s3") or {}
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        obj = s3.get("object") or {}
        # S3 notifications URL-encode the key (a space arrives as '+').
        found.append((str(s3["bucket"]["name"]), unquote_plus(str(obj["key"])), obj.get("versionId")))
    return found


@tracer.capture_method
def index(event: dict[str, Any]) -> dict[str, int]:
    inventory = get_inventory()
    ring = key_ring()
    if "backfill" in event:
        name = str(event["backfill"])
        dataset = inventory.datasets.get(name)
        if dataset is None or not dataset.in_s3:
            raise UnknownDataset(f"no S3 dataset named {name}")
        return s3store.backfill(dataset, ring)
    objects = entries = 0
    for bucket, key, version_id in _objects(event):
        for dataset in s3store.datasets_for_object(inventory, bucket, key):
            objects += 1
            entries += s3store.index_object(dataset, key, ring, version_id)
    return {"objects": objects, "entries": entries}


@metrics.log_metrics
@tracer.capture_lambda_handler
def handle(event: dict[str, Any], context: Any) -> dict[str, int]:
    counts = index(event)
    metrics.add_metric(name="ObjectsIndexed", unit=MetricUnit.Count, value=counts["objects"])
    logger.info("objects indexed", extra=counts)
    return counts

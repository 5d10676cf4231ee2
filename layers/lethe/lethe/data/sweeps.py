"""Storage side of the retention sweep: sweep watermarks in the ControlTable, one page of a
retention index or of a parallel Scan segment, consistent batch reads, and conditional writes
(delete, anonymize, re-file, isolate). Items are plain dicts, as lethe.data.datasets returns them.

Every function here retries a transient error in place (lethe.aws.retried): reads, and writes whose
condition makes a repeat harmless, so one throttled call does not throw away the rest of a task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError

from lethe.aws import client, error_code, retried, retry_transient
from lethe.data import datasets, ledger, vault
from lethe.data.datasets import RESTRICTED_ATTRIBUTE, delete_item, from_wire, table_key, table_name, to_wire
from lethe.data.expiry import BUCKET_ATTRIBUTE, EXPIRES_ATTRIBUTE
from lethe.data.masking import UNLINKABLE
from lethe.data.models import ControlRecord
from lethe.errors import ConflictingWrite, DatasetUnavailable
from lethe.inventory import Dataset

WATERMARK_PARTITION = "SWEEP"
# Which stream last delivered records of a dataset to the retention index function, and when.
STREAM_PARTITION = "STREAM"
GET_BATCH = 100
# Keys per index page: reads and writes interleave, so a task that fails loses at most one page of
# reads; large enough that each page's Query is a small part of its cost.
INDEX_PAGE = 1_000
_ROUNDS = 8


@dataclass(frozen=True)
class Page:
    """One response's worth: the items (or keys) and where the next page starts (None at the end)."""

    items: list[dict[str, Any]]
    next_key: dict[str, Any] | None


# ---------------------------------------------------------------- watermarks


@retried("read sweep watermark")
def watermark(name: str) -> str | None:
    """The last day (YYYY-MM-DD) whose buckets a sweep has planned for this name, if any."""
    record = next(iter(ControlRecord.query(WATERMARK_PARTITION, ControlRecord.sk == name, consistent_read=True)), None)
    return record.at if record is not None else None


@retried("read sweep watermarks")
def watermarks() -> dict[str, str]:
    """Every watermark by name, in one Query of their partition: a run's plan reads them all at once."""
    return {r.sk: r.at for r in ControlRecord.query(WATERMARK_PARTITION, consistent_read=True) if r.at is not None}


@retried("advance sweep watermark")
def advance_watermark(name: str, day: str, *, now: datetime) -> bool:
    """Move the watermark forward to `day`; never backwards (a re-run of an older day leaves it)."""
    record = ControlRecord(WATERMARK_PARTITION, name, at=day, data={"updated_at": now.astimezone(UTC).isoformat()})
    try:
        record.save(condition=ControlRecord.at.does_not_exist() | (ControlRecord.at < day))
    except PutError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# ---------------------------------------------------------------- streams


@dataclass(frozen=True)
class StreamState:
    """A dataset table's stream as DynamoDB describes it, and what Lethe's function last saw of it."""

    arn: str | None
    view_type: str | None
    seen_arn: str | None = None
    seen_at: str | None = None

    @property
    def wired(self) -> bool:
        """Its current stream carries both images and has delivered records to Lethe."""
        return self.arn is not None and self.view_type == "NEW_AND_OLD_IMAGES" and self.seen_arn == self.arn


@retried("describe stream")
def stream_state(dataset: Dataset) -> StreamState:
    """One DescribeTable and one read of the ControlTable."""
    try:
        table = client("dynamodb").describe_table(TableName=table_name(dataset))["Table"]
    except ClientError as exc:
        raise datasets.unavailable(dataset, exc) from exc
    spec = table.get("StreamSpecification") or {}
    enabled = bool(spec.get("StreamEnabled"))
    seen = next(
        iter(ControlRecord.query(STREAM_PARTITION, ControlRecord.sk == dataset.name, consistent_read=True)), None
    )
    return StreamState(
        arn=table.get("LatestStreamArn") if enabled else None,
        view_type=spec.get("StreamViewType") if enabled else None,
        seen_arn=(seen.data or {}).get("stream_arn") if seen else None,
        seen_at=seen.at if seen else None,
    )


def record_stream_seen(dataset: Dataset, stream_arn: str, *, now: datetime) -> None:
    ControlRecord(
        STREAM_PARTITION, dataset.name, at=now.astimezone(UTC).isoformat(), data={"stream_arn": stream_arn}
    ).save()


# ---------------------------------------------------------------- reading


@retried("retention index page")
def index_page(
    dataset: Dataset, index: str, bucket: str, until: str, start_key: dict[str, Any] | None = None, *, limit: int
) -> Page:
    """One Query page of a sparse expiry index: up to `limit` items in `bucket` whose expiry is at or
    before `until`, with the attributes the index projects (see index_attributes)."""
    request: dict[str, Any] = {
        "TableName": table_name(dataset),
        "IndexName": index,
        "Limit": limit,
        "KeyConditionExpression": "#b = :b AND #e <= :until",
        "ExpressionAttributeNames": {"#b": BUCKET_ATTRIBUTE, "#e": EXPIRES_ATTRIBUTE},
        "ExpressionAttributeValues": {":b": {"S": bucket}, ":until": {"S": until}},
    }
    return Page(*datasets.page(dataset, "query", request, start_key))


@retried("describe index")
def index_attributes(dataset: Dataset, index: str) -> frozenset[str] | None:
    """The attributes an index's items carry: the table's and the index's keys plus what it projects;
    None when it projects every attribute. One DescribeTable."""
    try:
        table = client("dynamodb").describe_table(TableName=table_name(dataset))["Table"]
    except ClientError as exc:
        raise datasets.unavailable(dataset, exc) from exc
    for gsi in table.get("GlobalSecondaryIndexes", []):
        if gsi["IndexName"] != index:
            continue
        projection = gsi.get("Projection", {})
        if projection.get("ProjectionType") == "ALL":
            return None
        keys = {k["AttributeName"] for k in [*table["KeySchema"], *gsi["KeySchema"]]}
        return frozenset(keys | set(projection.get("NonKeyAttributes", [])))
    raise DatasetUnavailable(f"dataset {dataset.name}: table {dataset.table} has no index {index}")


@retried("retention scan page")
def scan_page(
    dataset: Dataset,
    *,
    segment: int,
    total_segments: int,
    since_attribute: str,
    cutoff_iso: str,
    cutoff_epoch: int,
    skip_attribute: str | None = None,
    start_key: dict[str, Any] | None = None,
) -> Page:
    """One page of a parallel Scan segment, filtered to items whose `since` is at or before the cutoff.
    `since` may be an ISO string or epoch seconds, so there is one clause per type, each guarded by
    attribute_type. The cutoff is loose; the caller decides on each item."""
    condition = "((attribute_type(#s, :ts) AND #s <= :iso) OR (attribute_type(#s, :tn) AND #s <= :epoch))"
    names = {"#s": since_attribute}
    if skip_attribute:
        condition += " AND attribute_not_exists(#k)"
        names["#k"] = skip_attribute
    request: dict[str, Any] = {
        "TableName": table_name(dataset),
        "Segment": segment,
        "TotalSegments": total_segments,
        "FilterExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            ":iso": {"S": cutoff_iso},
            ":epoch": {"N": str(cutoff_epoch)},
            ":ts": {"S": "S"},
            ":tn": {"S": "N"},
        },
        "ConsistentRead": True,
    }
    return Page(*datasets.page(dataset, "scan", request, start_key))


@retried("retention read")
def get_items(dataset: Dataset, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The current items for these keys (strongly consistent BatchGetItem, 100 at a time).
    Keys whose item is gone are left out."""
    name = table_name(dataset)
    ddb = client("dynamodb")
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), GET_BATCH):
        pending: dict[str, Any] = {
            name: {"Keys": [to_wire(k) for k in keys[start : start + GET_BATCH]], "ConsistentRead": True}
        }
        for _ in range(_ROUNDS):
            try:
                response = ddb.batch_get_item(RequestItems=pending)
            except ClientError as exc:
                raise datasets.unavailable(dataset, exc) from exc
            found.extend(from_wire(raw) for raw in response.get("Responses", {}).get(name, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
        else:
            raise DatasetUnavailable(f"dataset {dataset.name}: reads stayed unprocessed after retries")
    return found


# ---------------------------------------------------------------- writing


def delete_unchanged(dataset: Dataset, item: dict[str, Any], *, attribute: str) -> bool:
    """Delete an item as it was read: a DeleteItem conditional on `attribute` (the retention rule's
    `since`) and the subject attribute still holding the values read, and on the item not being
    restricted meanwhile. An item that changed is left alone (False). A transient error is retried in
    place; a retry after a timeout whose delete did happen finds the item gone, and answers False.

    One conditional DeleteItem per item rather than TransactWriteItems: the deletes are independent,
    and a transaction would cost twice the write capacity and fail whole on one changed item.
    (BatchWriteItem takes no conditions.)"""
    subject = dataset.subject.attribute
    keyed = subject in table_key(dataset).attributes
    return retry_transient(
        delete_item,
        dataset,
        item,
        erased=ledger.Erasure("retention"),
        condition_attribute=attribute,
        condition_value=item[attribute],
        unchanged=[] if keyed or item.get(subject) is None else [subject],
        absent=[RESTRICTED_ATTRIBUTE],
        what="retention delete",
    )


def delete_restored_copy(dataset: Dataset, item: dict[str, Any]) -> bool:
    """Delete a restored copy of an item exactly as it was read (every attribute but the key
    unchanged); False when it changed or is gone. Retried in place on a transient error."""
    hash_key = table_key(dataset).hash
    return retry_transient(
        datasets.delete_item,
        dataset,
        item,
        condition_attribute=hash_key,
        condition_value=item[hash_key],
        unchanged=[a for a in item if a not in table_key(dataset).attributes],
        what="replay delete",
    )


def anonymize_for_good(
    dataset: Dataset,
    item: dict[str, Any],
    *,
    condition_attribute: str,
    now: datetime,
    erased: ledger.Erasure | None = None,
) -> bool:
    """Anonymize an item the way retention does (datasets.anonymize_item with random tokens, the same
    write an erasure makes): it leaves the retention index and is marked anonymized at `now`. False
    when the item changed since it was read. Retried in place on a transient error."""
    return retry_transient(
        datasets.anonymize_item,
        dataset,
        item,
        UNLINKABLE,
        now,
        condition_attribute=condition_attribute,
        condition_value=item[condition_attribute],
        erased=erased,
        retired_at=now,
        what="retention anonymize",
    )


def refile(dataset: Dataset, item: dict[str, Any], expiry: dict[str, str], *, since_attribute: str) -> bool:
    """Move an item to its true expiry bucket (`expiry`: lethe.data.expiry.expiry_attributes), if its
    `since` attribute still holds the value read. Retried in place on a transient error."""
    return retry_transient(
        datasets.update_item,
        dataset,
        item,
        to_set=expiry,
        condition_attribute=since_attribute,
        condition_value=item[since_attribute],
        what="retention refile",
    )


def isolate(
    dataset: Dataset,
    item: dict[str, Any],
    *,
    reason: str,
    purge_at: datetime,
    subject_ref: str | None,
    hold_ids: list[str] | None,
    now: datetime,
    erased: ledger.Erasure | None,
) -> bool | None:
    """Move an item into the vault (vault.isolate_item): True when isolated now, False when the vault
    holds this very item already, None when the live item changed since it was read (nothing written).
    Retried in place: a retry after a timeout whose transaction did happen finds its vault record."""
    try:
        return retry_transient(
            vault.isolate_item,
            dataset,
            datasets.key_of(dataset, item),
            item,
            reason=reason,
            purge_at=purge_at,
            subject_ref=subject_ref,
            request_id=None,
            hold_ids=hold_ids,
            now=now,
            erased=erased,
            what="retention isolate",
        )
    except ConflictingWrite:
        return None


@retried("replay scan page")
def restored_page(
    dataset: Dataset, start_key: dict[str, Any] | None, limit: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a consistent Scan of a restored table (the dataset's `table` names it), and where
    the next page starts."""
    return datasets.page(
        dataset, "scan", {"TableName": dataset.table, "ConsistentRead": True, "Limit": limit}, start_key
    )


# ---------------------------------------------------------------- queueing


@retried("queue retention tasks")
def send_messages(queue_url: str, bodies: list[str]) -> int:
    """SendMessageBatch, 10 at a time; a message SQS refuses is an error (the run is retried)."""
    sqs = client("sqs")
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        if response.get("Failed"):
            codes = sorted({f.get("Code", "unknown") for f in response["Failed"]})
            raise RuntimeError(f"SQS refused {len(response['Failed'])} retention tasks ({', '.join(codes)})")
    return len(bodies)

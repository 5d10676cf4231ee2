"""DynamoDB access to the inventory's datasets (the service tables that hold personal data).

A subject's items are found by Query on the dataset's subject index, or on the table's key when the
subject attribute is the hash key; never by Scan. Every write touches only what it must and is
conditional, so a redelivered task or a concurrent change is refused rather than overwritten.
Items are plain dicts (numbers as Decimal), as boto3's deserializer gives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from lethe.aws import client, error_code
from lethe.data import ledger
from lethe.data.expiry import ANONYMIZED_ATTRIBUTE, BUCKET_ATTRIBUTE, EXPIRES_ATTRIBUTE
from lethe.data.masking import Pseudonymizer, anonymize
from lethe.errors import ConflictingWrite, DatasetUnavailable
from lethe.inventory import Dataset, TableKey
from lethe.keys import normalize_email
from lethe.settings import get_settings

RESTRICTED_ATTRIBUTE = "lethe_restricted"
BATCH_SIZE = 25
_MAX_UNPROCESSED_ROUNDS = 8

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_wire(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in value.items()}


def from_wire(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in value.items()}


def table_name(dataset: Dataset) -> str:
    return get_settings().table_name(dataset.table)


def unavailable(dataset: Dataset, exc: ClientError) -> DatasetUnavailable:
    """The domain error for a dataset table that cannot be reached (missing, refused, throttled past retries)."""
    return DatasetUnavailable(f"dataset {dataset.name}: table {dataset.table} cannot be reached ({error_code(exc)})")


@cache
def _described_key(physical_table: str) -> TableKey:
    """DescribeTable once per table per process, for datasets whose inventory entry omits `key`."""
    schema = client("dynamodb").describe_table(TableName=physical_table)["Table"]["KeySchema"]
    parts = {entry["KeyType"]: entry["AttributeName"] for entry in schema}
    return TableKey(hash=parts["HASH"], range=parts.get("RANGE"))


def forget_described_keys() -> None:
    _described_key.cache_clear()


def table_key(dataset: Dataset) -> TableKey:
    if dataset.key is not None:
        return dataset.key
    try:
        return _described_key(table_name(dataset))
    except ClientError as exc:
        raise unavailable(dataset, exc) from exc


def recovery_window_days(dataset: Dataset) -> int | None:
    """How many days back the table's point-in-time recovery can restore (0 when it is off), or None
    when that cannot be read (one DescribeContinuousBackups)."""
    try:
        described = client("dynamodb").describe_continuous_backups(TableName=table_name(dataset))
    except ClientError:
        return None
    pitr = described.get("ContinuousBackupsDescription", {}).get("PointInTimeRecoveryDescription", {})
    if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
        return 0
    return int(pitr.get("RecoveryPeriodInDays") or 35)


def key_of(dataset: Dataset, item: dict[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in table_key(dataset).attributes}


def email_variants(email: str) -> list[str]:
    normalized = normalize_email(email)
    return [normalized] if normalized == email else [normalized, email]


def page(
    dataset: Dataset, operation: str, request: dict[str, Any], start_key: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a Query or Scan (`operation`) on the dataset's table (or an index of it): its items
    and where the next page starts (None at the end). A fault is DatasetUnavailable."""
    if start_key:
        request = {**request, "ExclusiveStartKey": start_key}
    try:
        answer = getattr(client("dynamodb"), operation)(**request)
    except ClientError as exc:
        raise unavailable(dataset, exc) from exc
    return [from_wire(raw) for raw in answer.get("Items", [])], answer.get("LastEvaluatedKey")


def pages(dataset: Dataset, operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item of a Query or Scan, page by page (following LastEvaluatedKey)."""
    start_key: dict[str, Any] | None = None
    while True:
        items, start_key = page(dataset, operation, request, start_key)
        yield from items
        if start_key is None:
            return


def items_for_subject(dataset: Dataset, email: str, *, consistent: bool = False) -> Iterator[dict[str, Any]]:
    """Every item of the subject found by its email (the dataset's identity must be email)."""
    yield from items_for_identity(dataset, email_variants(email), consistent=consistent)


def items_for_identity(
    dataset: Dataset, values: Iterable[str | int], *, consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """Every item whose subject attribute holds one of `values`, page by page (one Query per value
    and page, following LastEvaluatedKey). `consistent` asks for a strongly consistent read where
    the table allows it: on the table's key, not on an index (a GSI is eventually consistent)."""
    attribute = dataset.subject.attribute
    for value in values:
        request: dict[str, Any] = {
            "TableName": table_name(dataset),
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": attribute},
            "ExpressionAttributeValues": {":s": _serializer.serialize(value)},
        }
        if dataset.subject.index is not None:
            request["IndexName"] = dataset.subject.index
        elif consistent:
            request["ConsistentRead"] = True
        yield from pages(dataset, "query", request)


def _unchanged_condition(
    item: dict[str, Any], attributes: Iterable[str], names: dict[str, str], values: dict[str, Any]
) -> list[str]:
    """Each listed attribute still holds the value we read (so a second run, which would see the
    masked value, is refused instead of masking twice)."""
    clauses = []
    for i, attribute in enumerate(sorted(set(attributes))):
        names[f"#c{i}"] = attribute
        values[f":c{i}"] = _serializer.serialize(item[attribute])
        clauses.append(f"#c{i} = :c{i}")
    return clauses


def _write_if(dataset: Dataset, operation: str, **request: Any) -> bool:
    """One conditional write (`operation`: update_item or delete_item) on the dataset's table: False
    when its condition did not hold (nothing written); a fault is DatasetUnavailable."""
    try:
        getattr(client("dynamodb"), operation)(TableName=table_name(dataset), **request)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise unavailable(dataset, exc) from exc
    return True


def update_item(
    dataset: Dataset,
    item: dict[str, Any],
    *,
    to_set: dict[str, Any],
    to_remove: Iterable[str] = (),
    condition_attribute: str,
    condition_value: Any,
    unchanged: Iterable[str] = (),
    erased: ledger.Erasure | None = None,
) -> bool:
    """One UpdateItem touching only `to_set` and `to_remove`, conditional on the item still having
    `condition_attribute` = `condition_value` and the `unchanged` attributes as read.
    A failed condition (already done, or changed meanwhile) returns False and writes nothing.
    With `erased` (a masking), the erasure ledger records the item once the update is done."""
    to_remove = [name for name in to_remove if name not in to_set]
    key_attributes = set(table_key(dataset).attributes)
    touched = (set(to_set) | set(to_remove)) & key_attributes
    if touched:
        raise ConflictingWrite(f"dataset {dataset.name}: key attribute {sorted(touched)[0]} cannot be rewritten")
    if not to_set and not to_remove:
        return False
    names: dict[str, str] = {"#subject": condition_attribute}
    values: dict[str, Any] = {":subject": _serializer.serialize(condition_value)}
    sets, removes = [], []
    for i, (name, value) in enumerate(to_set.items()):
        names[f"#f{i}"] = name
        values[f":f{i}"] = _serializer.serialize(value)
        sets.append(f"#f{i} = :f{i}")
    for i, name in enumerate(to_remove):
        names[f"#r{i}"] = name
        removes.append(f"#r{i}")
    conditions = ["#subject = :subject", *_unchanged_condition(item, unchanged, names, values)]
    expression = " ".join(
        part
        for part in (f"SET {', '.join(sets)}" if sets else "", f"REMOVE {', '.join(removes)}" if removes else "")
        if part
    )
    written = _write_if(
        dataset,
        "update_item",
        Key=to_wire(key_of(dataset, item)),
        UpdateExpression=expression,
        ConditionExpression=" AND ".join(conditions),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    if written:
        ledger.record_erased(dataset, [item], key_of, action="anonymize", erasure=erased)
    return written


def anonymize_item(
    dataset: Dataset,
    item: dict[str, Any],
    ring: Pseudonymizer,
    now: datetime,
    *,
    condition_attribute: str,
    condition_value: Any,
    erased: ledger.Erasure | None = None,
    retired_at: datetime | None = None,
) -> bool:
    """Mask the dataset's fields on one item (one UpdateItem), the one anonymizing write of erasure,
    retention and replay. False when the item no longer matches `condition_attribute` =
    `condition_value` or changed since it was read: nothing is overwritten. With `retired_at` (a
    retention anonymization) the item also leaves the retention index for good: its expiry
    attributes go and `lethe_anonymized_at` marks it."""
    to_set, to_remove = anonymize(dataset, item, ring, now)
    masked = [*to_set, *to_remove]
    if retired_at is not None:
        to_set = {**to_set, ANONYMIZED_ATTRIBUTE: retired_at.astimezone(UTC).isoformat()}
        to_remove = [*to_remove, BUCKET_ATTRIBUTE, EXPIRES_ATTRIBUTE]
    return update_item(
        dataset,
        item,
        erased=erased,
        to_set=to_set,
        to_remove=to_remove,
        condition_attribute=condition_attribute,
        condition_value=condition_value,
        unchanged=masked,
    )


def delete_items(dataset: Dataset, keys: Iterable[dict[str, Any]], *, erased: ledger.Erasure | None = None) -> int:
    """BatchWriteItem, 25 keys at a time, retrying UnprocessedItems. Returns how many were sent.
    With `erased`, the erasure ledger records each item once its batch is done."""
    name = table_name(dataset)
    ddb = client("dynamodb")
    batch: list[dict[str, Any]] = []
    sent = 0

    def flush() -> None:
        pending = {name: [{"DeleteRequest": {"Key": to_wire(key)}} for key in batch]}
        for _ in range(_MAX_UNPROCESSED_ROUNDS):
            try:
                response = ddb.batch_write_item(RequestItems=pending)
            except ClientError as exc:
                raise unavailable(dataset, exc) from exc
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                ledger.record_erased(dataset, batch, lambda _d, key: key, action="delete", erasure=erased)
                return
        raise DatasetUnavailable(f"dataset {dataset.name}: deletes stayed unprocessed after retries")

    for key in keys:
        batch.append(key)
        if len(batch) == BATCH_SIZE:
            flush()
            sent += len(batch)
            batch = []
    if batch:
        flush()
        sent += len(batch)
    return sent


def delete_item(
    dataset: Dataset,
    item: dict[str, Any],
    *,
    condition_attribute: str,
    condition_value: Any,
    unchanged: Iterable[str] = (),
    absent: Iterable[str] = (),
    erased: ledger.Erasure | None = None,
) -> bool:
    """One conditional DeleteItem: the item must still have `condition_attribute` = `condition_value`
    (it still belongs to the subject), the `unchanged` attributes as read, and none of the `absent`
    ones. False if it did not, and nothing is deleted."""
    names: dict[str, str] = {"#s": condition_attribute}
    values: dict[str, Any] = {":s": _serializer.serialize(condition_value)}
    conditions = ["#s = :s", *_unchanged_condition(item, unchanged, names, values)]
    for i, attribute in enumerate(absent):
        names[f"#a{i}"] = attribute
        conditions.append(f"attribute_not_exists(#a{i})")
    deleted = _write_if(
        dataset,
        "delete_item",
        Key=to_wire(key_of(dataset, item)),
        ConditionExpression=" AND ".join(conditions),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    if deleted:
        ledger.record_erased(dataset, [item], key_of, action="delete", erasure=erased)
    return deleted


def subject_values_for_hash(dataset: Dataset, digest: str) -> list[str | int]:
    """The subject values (e.g. addresses) of the items whose hashed attribute is `digest`, by Query on
    the dataset's hash index (never a Scan). A dataset without `subject.hashed` cannot match: []."""
    hashed = dataset.subject.hashed
    if hashed is None:
        return []
    request: dict[str, Any] = {
        "TableName": table_name(dataset),
        "IndexName": hashed.index,
        "KeyConditionExpression": "#h = :h",
        "ExpressionAttributeNames": {"#h": hashed.attribute},
        "ExpressionAttributeValues": {":h": _serializer.serialize(digest)},
    }
    found: list[str | int] = []
    for item in pages(dataset, "query", request):
        value = item.get(dataset.subject.attribute)
        if isinstance(value, str | int) and value not in found:
            found.append(value)
    return found

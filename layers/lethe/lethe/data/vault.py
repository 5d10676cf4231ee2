"""The vault: items isolated from every processing path (legal hold, statutory retention) until
their purge date.

Items handed to this module are Python values as boto3's TypeDeserializer returns them (Decimal,
set, Binary). In the vault they are kept losslessly, as DynamoDB-typed JSON.

Isolation is one DynamoDB transaction: the vault record is put (only if its id is free) and the
live item is deleted (only if it is unchanged since it was read). Either both happen or neither,
so an item is never lost between the two tables and never left in both.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import ConfigDict, Field

from lethe.aws import client
from lethe.data import ledger, writes
from lethe.data.models import VaultRecord, bind_models
from lethe.domain import Model
from lethe.errors import ConflictingWrite, DatasetUnavailable
from lethe.inventory import Dataset
from lethe.settings import get_settings

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class VaultEntry(Model):
    """One isolated item, as the purger and the exporter see it."""

    model_config = ConfigDict(frozen=True)

    vault_id: str
    dataset: str
    table: str
    item_key: dict[str, Any]
    item: dict[str, Any]
    subject_ref: str | None = None
    reason: str
    isolated_at: str
    purge_at: str
    purge_day: str
    request_id: str | None = None
    hold_ids: list[str] = Field(default_factory=list)


class DueRecord(Model):
    """A key of the by_purge_day index: enough to fetch and purge one record."""

    model_config = ConfigDict(frozen=True)

    vault_id: str
    purge_at: str


# ---------------------------------------------------------------- encoding


def _typed(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], _SERIALIZER.serialize(value))


def _json_safe(av: Any) -> Any:
    """DynamoDB-typed value → JSON-safe (binary as base64; set members sorted, so that the same
    item always encodes the same way, whatever the process's hash seed)."""
    if isinstance(av, dict) and len(av) == 1:
        ((kind, members),) = av.items()
        if kind in ("SS", "NS", "BS") and isinstance(members, list | set):
            return {kind: sorted(_json_safe(v) for v in members)}
    if isinstance(av, dict):
        return {k: _json_safe(v) for k, v in av.items()}
    if isinstance(av, list | set):
        return [_json_safe(v) for v in av]
    if isinstance(av, Binary):
        return base64.b64encode(cast(Any, av).value).decode()
    if isinstance(av, bytes | bytearray):
        return base64.b64encode(bytes(av)).decode()
    return av


def _from_json_safe(av: dict[str, Any]) -> Any:
    """JSON-safe DynamoDB-typed value → Python value."""
    ((kind, inner),) = av.items()
    if kind == "B":
        return _DESERIALIZER.deserialize({"B": base64.b64decode(inner)})
    if kind == "BS":
        return _DESERIALIZER.deserialize({"BS": [base64.b64decode(v) for v in inner]})
    if kind == "M":
        return {k: _from_json_safe(v) for k, v in inner.items()}
    if kind == "L":
        return [_from_json_safe(v) for v in inner]
    return _DESERIALIZER.deserialize(cast(Any, av))


def encode_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _json_safe(_typed(value)) for name, value in item.items()}


def decode_item(encoded: dict[str, Any]) -> dict[str, Any]:
    return {name: _from_json_safe(value) for name, value in encoded.items()}


def vault_id_for(dataset: str, key: dict[str, Any], item: dict[str, Any]) -> str:
    """Deterministic: the same item of the same dataset always gets the same id, so a redelivered
    isolation finds its own record. The item's content is part of it, so an item re-created later
    under the same key and isolated again gets a record of its own."""
    canonical = json.dumps(
        {"dataset": dataset, "key": encode_item(key), "item": encode_item(item)}, sort_keys=True, default=str
    )
    return "V" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def unchanged_condition(item: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A condition that holds only while the stored item still has every attribute as read."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    parts: list[str] = []
    for i, (name, value) in enumerate(sorted(item.items())):
        names[f"#u{i}"] = name
        values[f":u{i}"] = _typed(value)
        parts.append(f"#u{i} = :u{i}")
    if not parts:
        raise ValueError("an item without attributes cannot be isolated")
    return " AND ".join(parts), names, values


# ---------------------------------------------------------------- isolation


def isolate_item(
    dataset: Dataset,
    key: dict[str, Any],
    item: dict[str, Any],
    *,
    reason: str,
    purge_at: datetime,
    subject_ref: str | None,
    request_id: str | None,
    hold_ids: list[str] | None = None,
    now: datetime | None = None,
    erased: ledger.Erasure | None = None,
) -> bool:
    """Move one live item into the vault. True if it was isolated now, False if this very item was
    already isolated (a redelivery). Raises ConflictingWrite if the live item changed or vanished
    since it was read (nothing is written then), DatasetUnavailable if its table cannot be reached.

    `purge_at` is when the vault may delete it; a hold still covering it then keeps it. The record
    is filed under the later of the purge day and the isolation day, so the daily purge, which
    walks forward from its last day, never misses a record filed in the past."""
    settings = get_settings()
    _bound()
    isolated_at = (now or datetime.now(UTC)).astimezone(UTC)
    purge_at = purge_at.astimezone(UTC)
    record = VaultRecord(
        vault_id_for(dataset.name, key, item),
        dataset=dataset.name,
        table=dataset.table,
        item_key=encode_item(key),
        item=encode_item(item),
        subject_ref=subject_ref or None,
        reason=reason,
        isolated_at=isolated_at.isoformat(),
        purge_at=purge_at.isoformat(),
        purge_day=max(purge_at, isolated_at).date().isoformat(),
        request_id=request_id or None,
        hold_ids=list(hold_ids) if hold_ids else None,
    )
    condition, names, values = unchanged_condition(item)
    try:
        client("dynamodb").transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": settings.vault_table,
                        "Item": record.serialize(),
                        "ConditionExpression": "attribute_not_exists(vault_id)",
                    }
                },
                {
                    "Delete": {
                        "TableName": settings.table_name(dataset.table),
                        "Key": {k: _typed(v) for k, v in key.items()},
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
            ]
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            raise DatasetUnavailable(f"dataset {dataset.name}: its table cannot be reached") from exc
        if code != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return False
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            raise ConflictingWrite(f"dataset {dataset.name}: an item changed since it was read") from exc
        raise
    ledger.record_erased(dataset, [key], lambda _d, k: k, action="isolate", erasure=erased)
    return True


# ---------------------------------------------------------------- reading and purging


def _from_record(record: VaultRecord) -> VaultEntry:
    return VaultEntry(
        vault_id=record.vault_id,
        dataset=record.dataset,
        table=record.table,
        item_key=decode_item(record.item_key),
        item=decode_item(record.item),
        subject_ref=record.subject_ref,
        reason=record.reason,
        isolated_at=record.isolated_at,
        purge_at=record.purge_at,
        purge_day=record.purge_day,
        request_id=record.request_id,
        hold_ids=list(record.hold_ids or []),
    )


def _bound() -> None:
    settings = get_settings()
    if VaultRecord.Meta.table_name != settings.vault_table:
        bind_models(settings)


def get_entry(vault_id: str) -> VaultEntry | None:
    _bound()
    try:
        return _from_record(VaultRecord.get(vault_id, consistent_read=True))
    except VaultRecord.DoesNotExist:
        return None


def entries_for_subject(subject_refs: list[str]) -> Iterator[VaultEntry]:
    """Every isolated item of a subject (under any of its references), for exports: a Query of the
    by_subject index (keys only), then the records themselves by BatchGetItem. Only the exporter and
    the vault purger may call this (IAM in template.yaml)."""
    _bound()
    for ref in subject_refs:
        ids = [row.vault_id for row in VaultRecord.by_subject.query(ref)]
        for record in sorted(VaultRecord.batch_get(ids, consistent_read=True), key=lambda r: r.vault_id):
            yield _from_record(record)


def due_on(day: str, now: datetime) -> Iterator[DueRecord]:
    """Records filed under `day` whose purge time has passed (a Query of by_purge_day, never a Scan)."""
    _bound()
    until = now.astimezone(UTC).isoformat()
    for key in VaultRecord.by_purge_day.query(day, VaultRecord.purge_at <= until):
        yield DueRecord(vault_id=key.vault_id, purge_at=key.purge_at)


def purge(entry: VaultEntry) -> bool:
    """Delete a record, only if it is still as it was read (same purge date, day and holds).
    False if it was already gone or changed (e.g. a hold was added meanwhile)."""
    _bound()
    holds = VaultRecord.hold_ids == entry.hold_ids if entry.hold_ids else VaultRecord.hold_ids.does_not_exist()
    condition = (VaultRecord.purge_at == entry.purge_at) & (VaultRecord.purge_day == entry.purge_day) & holds
    return writes.delete_if(VaultRecord(entry.vault_id), condition)


def defer(entry: VaultEntry, *, until: datetime, hold_ids: list[str]) -> bool:
    """Re-file a record a hold still covers under a later purge day, so the purge looks at it again
    then (without a Scan), and note the holds that kept it. Its purge date stays as it was.
    False if it changed meanwhile."""
    _bound()
    return writes.update_if(
        VaultRecord(entry.vault_id),
        [
            VaultRecord.purge_day.set(until.astimezone(UTC).date().isoformat()),
            VaultRecord.hold_ids.set(cast(Any, list(hold_ids))),
        ],
        VaultRecord.purge_day == entry.purge_day,
    )

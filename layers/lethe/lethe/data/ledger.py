"""The erasure ledger: what Lethe erased or retention-deleted, so that a table restored from a backup
can lose it again (lethe.logic.replay) and a re-creation can be noticed (lethe.logic.recreation).

Two kinds of rows, both free of raw values (a dataset name, times, an action and HMACs under the
deployment key):
- pk `ITEM#<dataset>#<key ref>`: one item, with the action applied to it (delete, anonymize,
  isolate), the HMAC of its subject, the source (an erasure request or a retention run) and when.
- pk `SUBJECT#<subject ref>`: a subject erased on request, and when (the latest erasure).

Rows are written with a condition that keeps the latest time, so a redelivered task writes nothing
new. The table outlives everything it describes: its own PITR, no TTL, no function deletes from it.

An erasure writes its subject row before it deletes anything (the request is verified; a subject
row without deletes is harmless, deletes without one would be forgotten). Item rows follow each
write that succeeded, retried in place; one still lost (a crash, faults that outlast the retries)
is covered by the subject row (erasure) or by the retention sweep that every replay runs (retention).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger
from pynamodb.exceptions import PutError

from lethe.aws import client, error_code, is_transient, retried, retry_transient
from lethe.data.models import LedgerRecord
from lethe.keys import KeyRing, key_ring
from lethe.settings import get_settings

logger = Logger(child=True)

Source = Literal["erasure", "retention", "replay"]
_GET_BATCH = 100
_ROUNDS = 8


@dataclass(frozen=True)
class Erasure:
    """Why items are being erased: an erasure request (with its subject) or a retention run."""

    source: Source
    subject_ref: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Entry:
    dataset: str
    key_ref: str
    subject_ref: str | None
    action: str
    at: str
    source: str


def key_ref(dataset: str, key: dict[str, Any], ring: KeyRing | None = None) -> str:
    """The HMAC of an item's key (values as text, attributes sorted): the same for a restored copy."""
    canonical = json.dumps({k: str(v) for k, v in sorted(key.items())}, separators=(",", ":"))
    return (ring or key_ring()).mac("ledger-key", f"{dataset}\x00{canonical}")


def subject_ref_of(subject_attribute: str, item: dict[str, Any]) -> str | None:
    value = item.get(subject_attribute)
    return key_ring().subject_ref(value) if isinstance(value, str) and value else None


def record_erased(
    dataset: Any, items: Iterable[dict[str, Any]], key_of: Any, *, action: str, erasure: Erasure | None
) -> None:
    """The hook of lethe.data.datasets and lethe.data.vault: rows for items just erased."""
    if erasure is None:
        return
    items = list(items)
    if not items:
        return
    attribute = dataset.subject.attribute
    try:
        retry_transient(
            record_items,
            dataset.name,
            [key_of(dataset, item) for item in items],
            action=action,
            erasure=erasure,
            subject_refs=[erasure.subject_ref or subject_ref_of(attribute, item) for item in items],
            what="erasure ledger",
        )
    except Exception as exc:
        if not is_transient(exc):
            raise
        # The erasure it follows is done: it must not be repeated (a retry would find the item gone and
        # miscount it). A row lost here is covered by the subject row (an erasure request) or by the
        # retention sweep every replay runs (a retention delete).
        logger.warning("erasure ledger row not written", dataset=dataset.name, error=error_code(exc))


def _item_pk(dataset: str, ref: str) -> str:
    return f"ITEM#{dataset}#{ref}"


def _subject_pk(ref: str) -> str:
    return f"SUBJECT#{ref}"


def _save_latest(record: LedgerRecord) -> None:
    try:
        record.save(condition=LedgerRecord.pk.does_not_exist() | (LedgerRecord.at < record.at))
    except PutError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise  # an equal or later row is already there: nothing to add


def record_subject(subject_ref: str, *, reference: str | None, now: datetime | None = None) -> None:
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    _save_latest(
        LedgerRecord(_subject_pk(subject_ref), kind="subject", subject_ref=subject_ref, at=at, reference=reference)
    )


def record_items(
    dataset: str,
    keys: Iterable[dict[str, Any]],
    *,
    action: str,
    erasure: Erasure,
    subject_refs: Iterable[str | None] | None = None,
    now: datetime | None = None,
) -> int:
    """One row per item key. `subject_refs` (one per key) defaults to the erasure's subject."""
    ring = key_ring()
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    keys = list(keys)
    refs = list(subject_refs) if subject_refs is not None else [erasure.subject_ref] * len(keys)
    for key, subject in zip(keys, refs, strict=True):
        ref = key_ref(dataset, key, ring)
        _save_latest(
            LedgerRecord(
                _item_pk(dataset, ref),
                kind="item",
                dataset=dataset,
                key_ref=ref,
                subject_ref=subject,
                action=action,
                at=at,
                source=erasure.source,
                reference=erasure.reference,
            )
        )
    return len(keys)


def _entry(raw: dict[str, Any]) -> Entry:
    def text(name: str) -> str:
        return str(raw.get(name, {}).get("S", ""))

    return Entry(
        dataset=text("dataset"),
        key_ref=text("key_ref"),
        subject_ref=text("subject_ref") or None,
        action=text("action"),
        at=text("at"),
        source=text("source"),
    )


def _batch_get(pks: list[str]) -> dict[str, dict[str, Any]]:
    """pk -> raw row, for the pks that have one (BatchGetItem, 100 at a time, consistent)."""
    table = get_settings().ledger_table
    ddb = client("dynamodb")
    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(pks))
    for start in range(0, len(unique), _GET_BATCH):
        pending: dict[str, Any] = {
            table: {"Keys": [{"pk": {"S": pk}} for pk in unique[start : start + _GET_BATCH]], "ConsistentRead": True}
        }
        for _ in range(_ROUNDS):
            response = ddb.batch_get_item(RequestItems=pending)
            for raw in response.get("Responses", {}).get(table, []):
                found[raw["pk"]["S"]] = raw
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
        else:
            raise RuntimeError("erasure ledger reads stayed unprocessed after retries")
    return found


@retried("read ledger")
def items_erased(dataset: str, key_refs: list[str]) -> dict[str, Entry]:
    """key ref -> its ledger row, for the refs the ledger holds."""
    rows = _batch_get([_item_pk(dataset, ref) for ref in key_refs])
    return {row["key_ref"]["S"]: _entry(row) for row in rows.values()}


@retried("read ledger")
def subjects_erased(subject_refs: list[str]) -> dict[str, str]:
    """subject ref -> when it was last erased, for the refs the ledger holds."""
    rows = _batch_get([_subject_pk(ref) for ref in subject_refs])
    return {row["subject_ref"]["S"]: row["at"]["S"] for row in rows.values()}

"""The audit trail: append-only and hash-chained, so an edited or missing record is detected.

Records never hold raw personal data: subjects are HMAC references (lethe.keys.KeyRing.subject_ref).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import PutError, QueryError

from lethe.aws import back_off, error_code, is_transient
from lethe.data.models import AuditRecord

CHAIN = "main"
GENESIS = "0" * 64


def _digest(prev_hash: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


def _body(record: AuditRecord) -> dict[str, Any]:
    return {
        "seq": int(record.seq),
        "at": record.at,
        "action": record.action,
        "actor": record.actor,
        "request_id": record.request_id,
        "subject_ref": record.subject_ref,
        "dataset": record.dataset,
        "details": record.details,
    }


def prepare(
    action: str,
    *,
    actor: str = "system",
    request_id: str | None = None,
    subject_ref: str | None = None,
    dataset: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditRecord:
    """The next record of the chain, not yet written: for a caller that writes it in the same
    transaction as the change it records (save it with the condition `AuditRecord.seq.does_not_exist()`;
    if another writer took the sequence number, the transaction is canceled and the caller prepares again)."""
    return _next(
        _head(),
        action,
        actor=actor,
        request_id=request_id,
        subject_ref=subject_ref,
        dataset=dataset,
        details=details,
        at=at,
    )


def _head() -> AuditRecord | None:
    return next(iter(AuditRecord.query(CHAIN, scan_index_forward=False, limit=1, consistent_read=True)), None)


def _next(
    head: AuditRecord | None,
    action: str,
    *,
    actor: str,
    request_id: str | None,
    subject_ref: str | None,
    dataset: str | None,
    details: dict[str, Any] | None,
    at: datetime | None,
) -> AuditRecord:
    record = AuditRecord(
        CHAIN,
        (int(head.seq) + 1) if head else 1,
        at=(at or datetime.now(UTC)).isoformat(),
        action=action,
        actor=actor,
        request_id=request_id,
        subject_ref=subject_ref,
        dataset=dataset,
        details=details,
        prev_hash=head.hash if head else GENESIS,
        hash="",
    )
    record.hash = _digest(record.prev_hash, _body(record))
    return record


def append(
    action: str,
    *,
    actor: str = "system",
    request_id: str | None = None,
    subject_ref: str | None = None,
    dataset: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
    attempts: int = 20,
) -> AuditRecord:
    """Append one record at the head of the chain. The put is conditional on the sequence number
    being free, so two writers never fork the chain; the loser re-reads the head and retries.
    A transient error is retried the same way; as the failed put may have landed all the same, the
    head is first compared with the record: if it is this very record, it is not written twice."""
    moment = at or datetime.now(UTC)
    may_have_landed = False
    for attempt in range(attempts):
        try:
            head = _head()
            record = _next(
                head,
                action,
                actor=actor,
                request_id=request_id,
                subject_ref=subject_ref,
                dataset=dataset,
                details=details,
                at=moment,
            )
            if may_have_landed and head is not None and _entry(head) == _entry(record):
                return head
            record.save(condition=AuditRecord.seq.does_not_exist())
            return record
        except (PutError, QueryError) as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                continue
            if not is_transient(exc):
                raise
            may_have_landed = may_have_landed or isinstance(exc, PutError)
            back_off(attempt)
    raise RuntimeError("audit chain is contended or unavailable; giving up after retries")


def _entry(record: AuditRecord) -> dict[str, Any]:
    """What a record says, apart from its place in the chain."""
    body = _body(record)
    body.pop("seq")
    return body


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify() -> ChainReport:
    """Walk the chain from the start: every hash must match and no sequence number may be missing."""
    prev_hash, expected, count = GENESIS, 1, 0
    for record in AuditRecord.query(CHAIN, consistent_read=True):
        seq = int(record.seq)
        if seq != expected:
            return ChainReport(False, count, expected, f"record {expected} is missing")
        if record.prev_hash != prev_hash:
            return ChainReport(False, count, seq, f"record {seq} does not follow record {seq - 1}")
        if _digest(record.prev_hash, _body(record)) != record.hash:
            return ChainReport(False, count, seq, f"record {seq} was altered")
        prev_hash, expected, count = record.hash, expected + 1, count + 1
    return ChainReport(True, count)


def records(action_prefix: str) -> Iterator[dict[str, Any]]:
    """Every record whose action starts with `action_prefix`, in chain order, as plain dicts (for
    reports: one Query of the chain, read page by page)."""
    for record in AuditRecord.query(CHAIN, filter_condition=AuditRecord.action.startswith(action_prefix)):
        yield _body(record)

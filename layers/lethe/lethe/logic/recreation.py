"""Re-creation of an erased subject's data: a write to a dataset table, seen on its stream, of an
item whose subject the erasure ledger says was erased on request before that write (or in its second:
a stream record's time is whole seconds).

It is flagged, never erased on its own: the person may have signed up again. The flag is an audit
record (`recreation.detected`, the subject as an HMAC), a metric (ErasedSubjectRecreated, with an
alarm) and a line in the operator's daily digest. Each stream record is flagged once, however often
it is delivered: a ControlTable row per record (pk RECREATED#<day>) is written after the audit, so a
redelivery after a crash may audit it twice but never not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from lethe.data import audit, ledger
from lethe.data.datasets import key_of
from lethe.data.models import ControlRecord
from lethe.domain import Model
from lethe.inventory import Dataset
from lethe.keys import KeyRing

PARTITION = "RECREATED#"


class Recreation(Model):
    dataset: str
    subject_ref: str
    key_ref: str
    at: datetime
    erased_at: datetime


def _writes_subject(
    dataset: Dataset, event: Literal["INSERT", "MODIFY", "REMOVE"], old: dict[str, Any] | None, new: dict[str, Any]
) -> str | None:
    """The subject an INSERT (or a MODIFY that changed the subject) writes, if any. The erasure's own
    writes are deletes or maskings that replace the subject, so they are never taken for one."""
    attribute = dataset.subject.attribute
    value = new.get(attribute)
    if not isinstance(value, str) or not value:
        return None
    if event == "INSERT" or (event == "MODIFY" and (old or {}).get(attribute) != value):
        return value
    return None


def check(
    dataset: Dataset,
    event: Literal["INSERT", "MODIFY", "REMOVE"],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    *,
    sequence: str,
    seen_at: datetime,
    ring: KeyRing,
) -> Recreation | None:
    """Flag the record if it writes an erased subject's data again. One ledger read per INSERT."""
    subject = _writes_subject(dataset, event, old, new) if new else None
    if subject is None or new is None:
        return None
    erased = ledger.subjects_erased(ring.subject_refs(subject))
    # A stream record's time is whole seconds, rounded down: a write in the erasure's own second counts.
    before = seen_at.replace(microsecond=0) + timedelta(seconds=1)
    matched = next(((ref, at) for ref, at in erased.items() if datetime.fromisoformat(at) < before), None)
    if matched is None:
        return None
    ref, erased_at = matched
    key_ref = ledger.key_ref(dataset.name, key_of(dataset, new), ring)
    day = seen_at.astimezone(UTC).date().isoformat()
    row_key = f"{dataset.name}#{key_ref}#{sequence}"
    if next(iter(ControlRecord.query(PARTITION + day, ControlRecord.sk == row_key, consistent_read=True)), None):
        return None  # this record was flagged already (a redelivery)
    found = Recreation(
        dataset=dataset.name,
        subject_ref=ref,
        key_ref=key_ref,
        at=seen_at.astimezone(UTC),
        erased_at=datetime.fromisoformat(erased_at),
    )
    audit.append(
        "recreation.detected",
        subject_ref=ref,
        dataset=dataset.name,
        details={"key_ref": key_ref, "erased_at": erased_at, "event": event, "action": "flagged, not erased"},
        at=found.at,
    )
    ControlRecord(PARTITION + day, row_key, at=found.at.isoformat(), data=found.model_dump(mode="json")).save()
    return found


def seen_between(start: datetime, end: datetime) -> list[Recreation]:
    """Re-creations flagged in (start, end], by Query on each day's partition."""
    found: list[Recreation] = []
    day = start.astimezone(UTC).date()
    while day <= end.astimezone(UTC).date():
        for row in ControlRecord.query(PARTITION + day.isoformat(), consistent_read=True):
            item = Recreation.model_validate(row.data or {})
            if start < item.at <= end:
                found.append(item)
        day += timedelta(days=1)
    return sorted(found, key=lambda r: r.at)

"""Legal holds: a subject's data, or a whole dataset, that must be kept whatever else is asked.

Under a hold, erasure and retention isolate (move to the vault), never delete. Holds live in the
ControlTable (pk HOLD, sk <hold id>). A hold on a subject stores only the subject's HMAC reference.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from lethe.data import audit, holds, writes
from lethe.data.models import ControlRecord
from lethe.domain import Model
from lethe.errors import LegalHoldNotFound, UnknownDataset
from lethe.inventory import get_inventory
from lethe.keys import key_ring

PARTITION = holds.PARTITION


class Hold(Model):
    hold_id: str
    subject_ref: str | None = None
    dataset: str | None = None
    reason: str
    placed_at: str
    active: bool = True
    lifted_at: str | None = None


def _to_hold(record: ControlRecord) -> Hold:
    data = dict(record.data or {})
    return Hold(
        hold_id=record.sk,
        subject_ref=data.get("subject_ref"),
        dataset=data.get("dataset"),
        reason=data.get("reason", ""),
        placed_at=data.get("placed_at", record.at or ""),
        active=bool(record.active),
        lifted_at=record.lifted_at.isoformat() if record.lifted_at else None,
    )


def place(*, reason: str, email: str | None = None, dataset: str | None = None, actor: str = "operator") -> Hold:
    """Place a hold on a subject (by email, stored only as an HMAC), a dataset, or both."""
    if not email and not dataset:
        raise ValueError("a legal hold needs an email, a dataset or both")
    if dataset is not None and dataset not in get_inventory().datasets:
        raise UnknownDataset(f"the inventory has no dataset {dataset!r}")
    subject_ref = key_ring().subject_ref(email) if email else None
    now = datetime.now(UTC).isoformat()
    hold_id = f"hold_{uuid.uuid4().hex[:16]}"
    data = {"subject_ref": subject_ref, "dataset": dataset, "reason": reason, "placed_at": now}
    ControlRecord(PARTITION, hold_id, at=now, data=data, active=True).save(condition=ControlRecord.sk.does_not_exist())
    audit.append(
        "legal_hold.placed",
        actor=actor,
        subject_ref=subject_ref,
        dataset=dataset,
        details={"hold_id": hold_id, "reason": reason},
    )
    return Hold(hold_id=hold_id, subject_ref=subject_ref, dataset=dataset, reason=reason, placed_at=now)


def lift(hold_id: str, *, actor: str = "operator") -> Hold:
    record = ControlRecord(PARTITION, hold_id)
    lifted = writes.update_if(
        record,
        [ControlRecord.active.set(False), ControlRecord.lifted_at.set(datetime.now(UTC))],
        ControlRecord.sk.exists() & (ControlRecord.active == True),  # noqa: E712 - pynamodb condition
    )
    if not lifted:
        raise LegalHoldNotFound(f"no active legal hold {hold_id}")
    hold = _to_hold(record)
    audit.append(
        "legal_hold.lifted",
        actor=actor,
        subject_ref=hold.subject_ref,
        dataset=hold.dataset,
        details={"hold_id": hold_id},
    )
    return hold


def list_holds(*, active_only: bool = False) -> list[Hold]:
    found = [_to_hold(r) for r in holds.hold_records()]
    return [h for h in found if h.active] if active_only else found


def covering(holds: Iterable[Hold], subject_refs: Iterable[str | None], dataset: str) -> list[Hold]:
    """The active holds among `holds` that cover a subject known by any of `subject_refs` in this
    dataset. A hold naming both a subject and a dataset covers only that subject in that dataset.
    With subject_refs [None] (a sweep that does not know the subject), only holds on a whole dataset
    apply."""
    refs = set(subject_refs)
    return [
        hold
        for hold in holds
        if hold.active
        and (hold.dataset is None or hold.dataset == dataset)
        and (hold.subject_ref is None or hold.subject_ref in refs)
    ]


def holds_for(subject_ref: str | None, dataset: str) -> list[Hold]:
    """Active holds covering this subject's items in this dataset (or the dataset as a whole)."""
    return covering(list_holds(active_only=True), [subject_ref], dataset)


def holds_for_email(email: str, dataset: str) -> list[Hold]:
    """Active holds for a subject under any key id of the ring (survives a key rotation)."""
    return covering(list_holds(active_only=True), key_ring().subject_refs(email), dataset)

"""Storage of the consent ledger (ConsentsTable).

Current state: pk SUBJ#<subject_id>, sk PURPOSE#<name>, one row per purpose, overwritten on change.
History:       pk SUBJ#<subject_id>, sk HIST#<iso time>#<seq>#<name>, append-only (conditional puts).
Links:         pk SUBJ#<subject_id>, sk LINK#<other id>, one row on each side of a device-account link.

Returns pydantic domain models, never pynamodb objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from pydantic import BaseModel
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from lethe.aws import error_code, transaction_connection
from lethe.data.models import ConsentLinkRecord, ConsentRecord
from lethe.errors import ConflictingWrite

CURRENT_PREFIX = "PURPOSE#"
HISTORY_PREFIX = "HIST#"
LINK_PREFIX = "LINK#"


def _pk(subject_id: str) -> str:
    return f"SUBJ#{subject_id}"


class ConsentState(BaseModel):
    """The current choice of one subject for one purpose."""

    subject_id: str
    purpose: str
    granted: bool
    policy_version: str
    source: str
    at: datetime
    note: str | None = None
    contact: str | None = None
    contact_ref: str | None = None


class ConsentChange(BaseModel):
    """One append-only history row."""

    subject_id: str
    purpose: str
    granted: bool
    policy_version: str
    source: str
    at: datetime
    ip_hash: str | None = None
    user_agent_family: str | None = None
    note: str | None = None


class ConsentLink(BaseModel):
    subject_id: str
    linked_id: str
    role: str  # "device" (this side is the guest device) or "account"
    at: datetime


def _state(record: ConsentRecord) -> ConsentState:
    return ConsentState(
        subject_id=record.subject_id,
        purpose=record.purpose,
        granted=bool(record.granted),
        policy_version=record.policy_version,
        source=record.source,
        at=datetime.fromisoformat(record.at),
        note=record.note,
        contact=record.contact,
        contact_ref=record.contact_ref,
    )


def _change(record: ConsentRecord) -> ConsentChange:
    return ConsentChange(
        subject_id=record.subject_id,
        purpose=record.purpose,
        granted=bool(record.granted),
        policy_version=record.policy_version,
        source=record.source,
        at=datetime.fromisoformat(record.at),
        ip_hash=record.ip_hash,
        user_agent_family=record.user_agent_family,
        note=record.note,
    )


def write_changes(states: Sequence[ConsentState], changes: Sequence[ConsentChange]) -> None:
    """Overwrite current rows and append history rows in one transaction. A history row is put only
    if its key is free, so history is never overwritten; a clash fails the whole write."""
    if not states and not changes:
        return
    try:
        with TransactWrite(connection=transaction_connection()) as transaction:
            for state in states:
                transaction.save(
                    ConsentRecord(
                        _pk(state.subject_id),
                        f"{CURRENT_PREFIX}{state.purpose}",
                        subject_id=state.subject_id,
                        purpose=state.purpose,
                        granted=state.granted,
                        policy_version=state.policy_version,
                        source=state.source,
                        at=state.at.isoformat(),
                        note=state.note,
                        granted_purpose=state.purpose if state.granted else None,
                        contact=state.contact if state.granted else None,
                        contact_ref=state.contact_ref if state.granted else None,
                    )
                )
            for seq, change in enumerate(changes):
                record = ConsentRecord(
                    _pk(change.subject_id),
                    f"{HISTORY_PREFIX}{change.at.isoformat()}#{seq:04d}#{change.purpose}",
                    subject_id=change.subject_id,
                    purpose=change.purpose,
                    granted=change.granted,
                    policy_version=change.policy_version,
                    source=change.source,
                    at=change.at.isoformat(),
                    ip_hash=change.ip_hash,
                    user_agent_family=change.user_agent_family,
                    note=change.note,
                )
                transaction.save(record, condition=ConsentRecord.sk.does_not_exist())
    except TransactWriteError as exc:
        # Only a canceled transaction is a conflict; a throttle, 500 or timeout is a server-side failure.
        if error_code(exc) == "TransactionCanceledException":
            raise ConflictingWrite("a consent history row already exists at that time; try again") from exc
        raise


def current(subject_id: str) -> list[ConsentState]:
    rows = ConsentRecord.query(_pk(subject_id), ConsentRecord.sk.startswith(CURRENT_PREFIX), consistent_read=True)
    return [_state(row) for row in rows]


def history(subject_id: str) -> list[ConsentChange]:
    rows = ConsentRecord.query(_pk(subject_id), ConsentRecord.sk.startswith(HISTORY_PREFIX), consistent_read=True)
    return [_change(row) for row in rows]


def granted_to(purpose: str) -> Iterator[ConsentState]:
    """Current rows granting a purpose, through the sparse by_granted_purpose index (a Query)."""
    for row in ConsentRecord.by_granted_purpose.query(purpose):
        yield _state(row)


def current_row(subject_id: str, purpose: str) -> ConsentState | None:
    try:
        row = ConsentRecord.get(_pk(subject_id), f"{CURRENT_PREFIX}{purpose}", consistent_read=True)
    except ConsentRecord.DoesNotExist:
        return None
    return _state(row)


def links(subject_id: str) -> list[ConsentLink]:
    rows = ConsentLinkRecord.query(_pk(subject_id), ConsentLinkRecord.sk.startswith(LINK_PREFIX), consistent_read=True)
    return [
        ConsentLink(subject_id=r.subject_id, linked_id=r.linked_id, role=r.role, at=datetime.fromisoformat(r.at))
        for r in rows
    ]


def save_link(device_id: str, account_id: str, at: datetime) -> bool:
    """Record the link on both sides. False if the device was already linked to that account."""
    try:
        ConsentLinkRecord(
            _pk(device_id),
            f"{LINK_PREFIX}{account_id}",
            subject_id=device_id,
            linked_id=account_id,
            role="device",
            at=at.isoformat(),
        ).save(condition=ConsentLinkRecord.sk.does_not_exist())
    except PutError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    ConsentLinkRecord(
        _pk(account_id),
        f"{LINK_PREFIX}{device_id}",
        subject_id=account_id,
        linked_id=device_id,
        role="account",
        at=at.isoformat(),
    ).save()
    return True


def contacts_for(contact_refs: Sequence[str]) -> list[ConsentState]:
    """Current rows that can reach an address (under any of its references): a Query each of the
    sparse by_contact_ref index, never a Scan."""
    return [_state(row) for ref in contact_refs for row in ConsentRecord.by_contact_ref.query(ref)]

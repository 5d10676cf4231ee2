"""Storage of the consent ledger (ConsentsTable).

Current state: pk SUBJ#<subject_id>, sk PURPOSE#<name>, one row per purpose, overwritten on change.
History:       pk SUBJ#<subject_id>, sk HIST#<iso time>#<seq>#<name>, append-only (conditional puts).
Links:         pk SUBJ#<subject_id>, sk LINK#<other id>, one row on each side of a device-account link.
Devices:       pk SUBJ#<device id>, sk DEVICE, a device id Lethe minted, with the hash of its secret.
Confirmations: ControlTable pk CONFIRM#<token hash>, sk EMAIL, one per confirmation email (TTL'd, one-time).

Returns pydantic domain models, never pynamodb objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from lethe.aws import error_code, transaction_connection
from lethe.data.models import ConsentDeviceRecord, ConsentLinkRecord, ConsentRecord, ControlRecord
from lethe.domain import Model
from lethe.errors import ConflictingWrite

CURRENT_PREFIX = "PURPOSE#"
HISTORY_PREFIX = "HIST#"
LINK_PREFIX = "LINK#"
DEVICE_SK = "DEVICE"
CONFIRM_PREFIX = "CONFIRM#"
CONFIRM_SK = "EMAIL"


def _pk(subject_id: str) -> str:
    return f"SUBJ#{subject_id}"


class ConsentState(Model):
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
    pending_contact: str | None = None
    pending_contact_ref: str | None = None


class ConsentChange(Model):
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


class ConsentLink(Model):
    subject_id: str
    linked_id: str
    role: str  # "device" (this side is the guest device) or "account"
    at: datetime


class Confirmation(Model):
    """An emailed confirmation link: which subject's pending address it confirms, and until when."""

    subject_id: str
    contact_ref: str
    expires_at: datetime


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
        pending_contact=record.pending_contact,
        pending_contact_ref=record.pending_contact_ref,
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


def _history_record(change: ConsentChange, seq: int) -> ConsentRecord:
    return ConsentRecord(
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
                        pending_contact=state.pending_contact if state.granted else None,
                        pending_contact_ref=state.pending_contact_ref if state.granted else None,
                    )
                )
            for seq, change in enumerate(changes):
                transaction.save(_history_record(change, seq), condition=ConsentRecord.sk.does_not_exist())
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


def save_device(device_id: str, secret_hash: str, at: datetime) -> None:
    """Record a newly minted device id. Its key must be free: an id is never minted twice."""
    try:
        ConsentDeviceRecord(
            _pk(device_id), DEVICE_SK, subject_id=device_id, secret_hash=secret_hash, at=at.isoformat()
        ).save(condition=ConsentDeviceRecord.pk.does_not_exist())
    except PutError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise ConflictingWrite("that device id is taken; try again") from exc
        raise


def device_secret_hash(device_id: str) -> str | None:
    """The stored hash of a minted device's secret; None if Lethe never minted that id."""
    try:
        return ConsentDeviceRecord.get(_pk(device_id), DEVICE_SK, consistent_read=True).secret_hash
    except ConsentDeviceRecord.DoesNotExist:
        return None


def save_confirmation(token_hash: str, confirmation: Confirmation, at: datetime) -> None:
    ControlRecord(
        f"{CONFIRM_PREFIX}{token_hash}",
        CONFIRM_SK,
        at=at.isoformat(),
        data={"subject_id": confirmation.subject_id, "contact_ref": confirmation.contact_ref},
        expires_at=int(confirmation.expires_at.timestamp()),
    ).save(condition=ControlRecord.pk.does_not_exist())


def find_confirmation(token_hash: str) -> Confirmation | None:
    try:
        row = ControlRecord.get(f"{CONFIRM_PREFIX}{token_hash}", CONFIRM_SK, consistent_read=True)
    except ControlRecord.DoesNotExist:
        return None
    data = row.data or {}
    return Confirmation(
        subject_id=data["subject_id"],
        contact_ref=data["contact_ref"],
        expires_at=datetime.fromtimestamp(int(row.expires_at or 0), tz=UTC),
    )


def use_confirmation(token_hash: str) -> bool:
    """Delete a confirmation (links are one-time). False if it was already used or never existed."""
    try:
        ControlRecord(f"{CONFIRM_PREFIX}{token_hash}", CONFIRM_SK).delete(condition=ControlRecord.pk.exists())
    except DeleteError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def confirm_contact(state: ConsentState, change: ConsentChange) -> bool:
    """Make a row's pending address its contact, if the row still grants the purpose and still waits
    for that address; with a history row, in one transaction. False if the row changed meanwhile."""
    if not state.pending_contact or not state.pending_contact_ref:
        return False
    row = ConsentRecord(_pk(state.subject_id), f"{CURRENT_PREFIX}{state.purpose}")
    try:
        with TransactWrite(connection=transaction_connection()) as transaction:
            transaction.update(
                row,
                actions=[
                    ConsentRecord.contact.set(state.pending_contact),
                    ConsentRecord.contact_ref.set(state.pending_contact_ref),
                    ConsentRecord.pending_contact.remove(),
                    ConsentRecord.pending_contact_ref.remove(),
                ],
                condition=(ConsentRecord.pending_contact_ref == state.pending_contact_ref)
                & (ConsentRecord.granted == True),  # noqa: E712 - a pynamodb condition, not a comparison
            )
            transaction.save(_history_record(change, 0), condition=ConsentRecord.sk.does_not_exist())
    except TransactWriteError as exc:
        if error_code(exc) == "TransactionCanceledException":
            return False
        raise
    return True


def contacts_for(contact_refs: Sequence[str]) -> list[ConsentState]:
    """Current rows that can reach an address (under any of its references): a Query each of the
    sparse by_contact_ref index, never a Scan."""
    return [_state(row) for ref in contact_refs for row in ConsentRecord.by_contact_ref.query(ref)]

"""The request repository: summary and event rows in RequestsTable, returned as domain models.

A request is one partition, pk REQ#<id>: the summary row (sk SUMMARY) and one event row per transition
or task outcome (sk EVENT#<time>#<n>). Every status change is a transaction that updates the summary
on condition of its status and version and writes the event row, so neither exists without the other.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from lethe.aws import error_code, transaction_connection
from lethe.data.models import (
    AuditRecord,
    RequestEventRecord,
    RequestsByContactScrub,
    RequestsByStatus,
    RequestSummaryRecord,
    bind_models,
)
from lethe.domain import TERMINAL_STATUSES, Model, Regulation, RequestType, Status
from lethe.errors import ConflictingWrite, RequestNotFound
from lethe.settings import get_settings

SUMMARY = "SUMMARY"
EVENT_PREFIX = "EVENT#"
# Attributes that only the repository itself may change.
_PROTECTED = frozenset({"pk", "sk", "request_id", "status", "version", "created_at", "subject_ref", "type"})


class DataSubjectRequest(Model):
    """A data-subject request as the rest of Lethe sees it. Contact details are excluded from repr,
    so logging a request by mistake does not log the subject."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    type: RequestType
    status: Status
    regulation: Regulation
    created_at: datetime
    due_at: datetime
    updated_at: datetime
    subject_ref: str
    email: str | None = Field(default=None, repr=False)
    name: str | None = Field(default=None, repr=False)
    details: str | None = Field(default=None, repr=False)
    corrections: dict[str, str] | None = Field(default=None, repr=False)
    attempts: int = 0
    code_hash: str | None = Field(default=None, repr=False, exclude=True)
    code_expires_at: datetime | None = None
    extended: bool = False
    extension_reason: str | None = None
    denial_reason: str | None = None
    datasets_pending: frozenset[str] = frozenset()
    datasets_done: frozenset[str] = frozenset()
    datasets_failed: frozenset[str] = frozenset()
    # [identity, value, round] for each identity learned through a dataset's links (not the email).
    identities: tuple[tuple[str, str | int, int], ...] = Field(default=(), repr=False)
    identity_round: int = 1
    outcome: dict[str, Any] | None = None
    version: int = 0
    # An authorized agent ({name, email}) who filed the request for the subject (lethe.logic.agents).
    agent: dict[str, str] | None = Field(default=None, repr=False)
    # The controller that sent it by OpenDSR, or None for a subject's own request.
    controller: str | None = None


class RequestEvent(Model):
    """One row of a request's history."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    kind: str
    from_status: Status | None = None
    to_status: Status | None = None
    actor: str = "system"
    detail: dict[str, Any] | None = None


def iso(moment: datetime) -> str:
    """Stored instants: UTC, fixed width, so they sort as strings (the by_status_due range key)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _iso_precise(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def pk_of(request_id: str) -> str:
    return f"REQ#{request_id}"


def _bind() -> None:
    """Point the models at this deployment's tables (cheap; settings are cached per cold start)."""
    settings = get_settings()
    if RequestSummaryRecord.Meta.table_name != settings.requests_table:
        bind_models(settings)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _to_domain(record: RequestSummaryRecord) -> DataSubjectRequest:
    return DataSubjectRequest(
        request_id=record.request_id,
        type=RequestType(record.type),
        status=Status(record.status),
        regulation=Regulation(record.regulation),
        created_at=datetime.fromisoformat(record.created_at),
        due_at=datetime.fromisoformat(record.due_at),
        updated_at=datetime.fromisoformat(record.updated_at),
        subject_ref=record.subject_ref,
        email=record.email,
        name=record.name,
        details=record.details,
        corrections=record.corrections,
        attempts=int(record.attempts or 0),
        code_hash=record.code_hash,
        code_expires_at=_parse(record.code_expires_at),
        extended=bool(record.extended),
        extension_reason=record.extension_reason,
        denial_reason=record.denial_reason,
        datasets_pending=frozenset(record.datasets_pending or ()),
        datasets_done=frozenset(record.datasets_done or ()),
        datasets_failed=frozenset(record.datasets_failed or ()),
        identities=tuple((str(i), v, int(r)) for i, v, r in record.identities or ()),
        identity_round=int(record.identity_round or 1),
        outcome=record.outcome,
        version=int(record.version or 0),
        agent=record.agent,
        controller=record.controller,
    )


def _event_record(request_id: str, kind: str, at: datetime, suffix: str, **fields: Any) -> RequestEventRecord:
    return RequestEventRecord(
        pk_of(request_id), f"{EVENT_PREFIX}{_iso_precise(at)}#{suffix}", at=iso(at), kind=kind, **fields
    )


def _storable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Status | RequestType | Regulation):
        return value.value
    if isinstance(value, frozenset | set | list | tuple) and all(isinstance(v, str) for v in value):
        return set(value) or None  # DynamoDB has no empty sets
    return value


def _record(request_id: str, *, consistent: bool = True) -> RequestSummaryRecord:
    _bind()
    try:
        return RequestSummaryRecord.get(pk_of(request_id), SUMMARY, consistent_read=consistent)
    except RequestSummaryRecord.DoesNotExist as exc:
        raise RequestNotFound("no such request") from exc


def create(
    request: DataSubjectRequest, *, actor: str = "subject", also: Iterable[RequestEventRecord] = ()
) -> DataSubjectRequest:
    """Store a new request and its first event ("created"). Fails if the id is taken. Rows in `also`
    (e.g. a controller's reference to the request) are saved in the same transaction, each only if
    its key is new: a taken key fails the whole creation as ConflictingWrite."""
    _bind()
    record = RequestSummaryRecord(
        pk_of(request.request_id),
        SUMMARY,
        request_id=request.request_id,
        type=request.type.value,
        status=request.status.value,
        regulation=request.regulation.value,
        created_at=iso(request.created_at),
        due_at=iso(request.due_at),
        updated_at=iso(request.updated_at),
        subject_ref=request.subject_ref,
        email=request.email,
        name=request.name,
        details=request.details,
        corrections=request.corrections,
        code_hash=request.code_hash,
        code_expires_at=iso(request.code_expires_at) if request.code_expires_at else None,
        attempts=0,
        extended=False,
        version=1,
        agent=request.agent,
        controller=request.controller,
    )
    event = _event_record(
        request.request_id, "created", request.created_at, "000001", to_status=request.status.value, actor=actor
    )
    try:
        with TransactWrite(connection=transaction_connection()) as tx:
            tx.save(record, condition=RequestSummaryRecord.pk.does_not_exist())
            tx.save(event, condition=RequestEventRecord.pk.does_not_exist())
            for row in also:
                tx.save(row, condition=RequestEventRecord.pk.does_not_exist())
    except TransactWriteError as exc:
        # Only a canceled transaction (the id is taken) is a conflict; a throttle, 500 or timeout is
        # a server-side failure to retry, never a 409 to the caller.
        if error_code(exc) == "TransactionCanceledException":
            raise ConflictingWrite("a request with this id already exists") from exc
        raise
    return _to_domain(record)


def get(request_id: str) -> DataSubjectRequest:
    """The request, read consistently. Raises RequestNotFound."""
    return _to_domain(_record(request_id))


def change_status(
    current: DataSubjectRequest,
    to: Status,
    *,
    allowed_from: frozenset[Status] | set[Status],
    actor: str,
    detail: dict[str, Any] | None,
    now: datetime,
    updates: dict[str, Any],
    audit_record: AuditRecord | None = None,
) -> DataSubjectRequest:
    """Move `current` to `to` in one transaction: the summary update is conditional on the status being
    one of `allowed_from` and the version being the one read; the event row and the audit record
    (lethe.data.audit.prepare) are written with it, so a transition is never left without its audit.
    Raises ConflictingWrite when a condition fails (the caller re-reads and decides)."""
    bad = set(updates) & _PROTECTED | {k for k in updates if not hasattr(RequestSummaryRecord, k)}
    if bad:
        raise ValueError(f"cannot update {sorted(bad)} through a transition")
    record = RequestSummaryRecord(pk_of(current.request_id), SUMMARY)
    actions: list[Action] = [
        RequestSummaryRecord.status.set(to.value),
        RequestSummaryRecord.version.set(current.version + 1),
        RequestSummaryRecord.updated_at.set(iso(now)),
    ]
    for name, value in updates.items():
        attribute = getattr(RequestSummaryRecord, name)
        stored = _storable(value)
        actions.append(attribute.remove() if stored is None else attribute.set(stored))
    condition = RequestSummaryRecord.status.is_in(*[s.value for s in allowed_from]) & (
        RequestSummaryRecord.version == current.version
    )
    event = _event_record(
        current.request_id,
        "transition",
        now,
        f"{current.version + 1:06d}",
        from_status=current.status.value,
        to_status=to.value,
        actor=actor,
        detail=detail,
    )
    try:
        with TransactWrite(connection=transaction_connection()) as tx:
            tx.update(record, actions=actions, condition=condition)
            tx.save(event, condition=RequestEventRecord.sk.does_not_exist())
            if audit_record is not None:
                tx.save(audit_record, condition=AuditRecord.seq.does_not_exist())
    except TransactWriteError as exc:
        if error_code(exc) == "TransactionCanceledException":
            raise ConflictingWrite("the request or the audit chain changed while it was being updated") from exc
        raise
    return get(current.request_id)


def put_event(
    request_id: str, kind: str, *, actor: str = "system", detail: dict[str, Any] | None = None, now: datetime
) -> RequestEvent:
    """Append an event row that is not a status change (a task outcome, a reminder, a failed code)."""
    _bind()
    record = new_event(request_id, kind, actor=actor, detail=detail, now=now)
    record.save(condition=RequestEventRecord.sk.does_not_exist())
    return _event_to_domain(record)


def new_event(
    request_id: str, kind: str, *, actor: str = "system", detail: dict[str, Any] | None = None, now: datetime
) -> RequestEventRecord:
    """An event row not yet written, for a caller that writes it in a transaction of its own."""
    return _event_record(request_id, kind, now, secrets.token_hex(4), actor=actor, detail=detail)


def _event_to_domain(record: RequestEventRecord) -> RequestEvent:
    return RequestEvent(
        at=datetime.fromisoformat(record.at),
        kind=record.kind,
        from_status=Status(record.from_status) if record.from_status else None,
        to_status=Status(record.to_status) if record.to_status else None,
        actor=record.actor,
        detail=record.detail,
    )


def events(request_id: str) -> list[RequestEvent]:
    """A request's history, oldest first."""
    _bind()
    rows = RequestEventRecord.query(
        pk_of(request_id), RequestEventRecord.sk.startswith(EVENT_PREFIX), consistent_read=True
    )
    return [_event_to_domain(row) for row in rows]


def consume_attempt(
    request_id: str, *, allowed_from: frozenset[Status], max_attempts: int, tried: str | None = None
) -> DataSubjectRequest | None:
    """Count one code attempt, atomically, before the code is compared: parallel guesses cannot
    exceed `max_attempts`. Returns the updated request, or None when no attempt is left (or the
    status is no longer one of `allowed_from`).

    `tried` (a digest of the code tried) makes a retry of the same attempt free: a subject whose
    right code met a server-side failure and who sends it again is not locked out by the retries.
    A different guess always counts."""
    _bind()
    record = RequestSummaryRecord(pk_of(request_id), SUMMARY)
    condition = (
        RequestSummaryRecord.pk.exists()
        & RequestSummaryRecord.status.is_in(*[s.value for s in allowed_from])
        & (RequestSummaryRecord.attempts < max_attempts)
    )
    actions: list[Action] = [RequestSummaryRecord.attempts.add(1)]
    if tried is not None:
        condition = condition & ~RequestSummaryRecord.tried_codes.contains(tried)
        actions.append(RequestSummaryRecord.tried_codes.add({tried}))
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            if tried is not None:
                current = _record(request_id)
                if tried in (current.tried_codes or set()) and current.status in {s.value for s in allowed_from}:
                    return _to_domain(current)
            return None
        raise
    return get(request_id)


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def _decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise ValueError("the cursor is not one this API returned") from exc
    if not isinstance(value, dict):
        raise ValueError("the cursor is not one this API returned")
    return value


def count_by_status(status: Status) -> int:
    """How many requests are in one status: a COUNT Query of the by_status_due index (reads the
    status's index partition; meant for open statuses, which stay small)."""
    _bind()
    return int(RequestSummaryRecord.by_status.count(status.value))


def query_by_status(
    status: Status,
    *,
    due_before: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[DataSubjectRequest], str | None]:
    """Requests in one status, earliest due first, by Query on the by_status_due index (never a Scan).
    Returns one page and the cursor of the next (None at the end)."""
    _bind()
    range_condition = RequestsByStatus.due_at <= iso(due_before) if due_before else None
    filter_condition: Condition | None = (
        RequestSummaryRecord.created_at <= iso(created_before) if created_before else None
    )
    result = RequestSummaryRecord.by_status.query(
        status.value,
        range_condition,
        filter_condition=filter_condition,
        limit=limit,
        last_evaluated_key=_decode_cursor(cursor),
    )
    page = [_to_domain(record) for record in result]
    return page, _encode_cursor(result.last_evaluated_key)


# ---------------------------------------------------------------- Lethe's own copies (lethe.logic.own_data)

# What an ended request no longer needs: how to reach the person, what they wrote, their codes, the
# erasure's pseudonym key. Status, type, dates, datasets, outcome and the HMAC reference stay.
CONTACT_ATTRIBUTES = (
    "email",
    "name",
    "details",
    "corrections",
    "code_hash",
    "tried_codes",
    "erasure_key",
    "agent",
)
PII_SCRUB_DUE = "due"


def request_ids_of_subject(subject_refs: Iterable[str]) -> list[str]:
    """Every request of a subject (under any of its references): a Query of by_subject each."""
    _bind()
    found: list[str] = []
    for ref in subject_refs:
        found += [row.pk.removeprefix("REQ#") for row in RequestSummaryRecord.by_subject.query(ref)]
    return sorted(set(found))


def scrub_contact(request_id: str, *, attributes: Iterable[str] = CONTACT_ATTRIBUTES, ended_only: bool) -> bool:
    """Remove contact details from one request row (and, when all of them go, its place in the
    by_pii_scrub index). With `ended_only`, only if the request has ended. False if it had not."""
    _bind()
    names = list(attributes)
    actions: list[Action] = [getattr(RequestSummaryRecord, name).remove() for name in names]
    if set(CONTACT_ATTRIBUTES) <= set(names):
        actions += [RequestSummaryRecord.pii_scrub.remove(), RequestSummaryRecord.pii_scrub_at.remove()]
    condition = RequestSummaryRecord.pk.exists()
    if ended_only:
        condition = condition & RequestSummaryRecord.status.is_in(*[s.value for s in TERMINAL_STATUSES])
    try:
        RequestSummaryRecord(pk_of(request_id), SUMMARY).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def scrub_due(now: datetime) -> Iterator[str]:
    """Ended requests whose contact details are due to go: a Query of the sparse by_pii_scrub index."""
    _bind()
    for row in RequestSummaryRecord.by_pii_scrub.query(PII_SCRUB_DUE, RequestsByContactScrub.pii_scrub_at <= iso(now)):
        yield row.pk.removeprefix("REQ#")


def strip_event_values(request_id: str, kind: str, keep: Iterable[str]) -> int:
    """Rewrite the detail of a request's events of one kind to the keys in `keep` (e.g. a
    rectification's old and new values go, the dataset and field names stay). Returns how many."""
    _bind()
    kept = set(keep)
    changed = 0
    for row in RequestEventRecord.query(pk_of(request_id), RequestEventRecord.sk.startswith(EVENT_PREFIX)):
        detail = row.detail or {}
        if row.kind != kind or set(detail) <= kept:
            continue
        row.update(actions=[RequestEventRecord.detail.set({k: v for k, v in detail.items() if k in kept})])
        changed += 1
    return changed


def erasure_key(request_id: str) -> bytes:
    """The key of this request's pseudonyms, made on first use (a conditional write, so parallel
    tasks agree on one). Only while the request runs: an ended one has none, by design."""
    _bind()
    for _ in range(3):
        record = _record(request_id)
        if record.erasure_key:
            return bytes.fromhex(record.erasure_key)
        try:
            record.update(
                actions=[RequestSummaryRecord.erasure_key.set(secrets.token_hex(32))],
                condition=RequestSummaryRecord.erasure_key.does_not_exist()
                & RequestSummaryRecord.status.is_in(Status.in_progress.value, Status.failed.value),
            )
        except UpdateError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
    raise ConflictingWrite("no pseudonym key can be made for a request that is not running")

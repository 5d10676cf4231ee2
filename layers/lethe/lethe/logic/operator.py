"""Operator actions on requests: list, show, approve, deny, extend, retry.

Every action is a conditional change (through the request state machine) and is audited with the
operator as actor; the subject is told of a denial or an extension, with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from lethe.data import audit, request_tasks, writes
from lethe.data.models import RequestSummaryRecord
from lethe.data.requests import SUMMARY, iso, pk_of
from lethe.domain import TERMINAL_STATUSES, Model, RequestType, Status
from lethe.errors import ExtensionNotAllowed, InvalidCursor, InvalidTransition
from lethe.logic import certificates, deadlines, fulfilment, fulfilment_resume
from lethe.logic.requests import (
    DataSubjectRequest,
    RequestEvent,
    add_event,
    get_request,
    list_by_status,
    list_events,
    transition,
)

OPEN_STATUSES = frozenset({Status.pending, Status.awaiting_approval, Status.in_progress, Status.failed})


class RequestView(Model):
    """A request as an operator sees it: no contact details beyond what the work needs."""

    request_id: str
    type: RequestType
    status: Status
    regulation: str
    created_at: datetime
    due_at: datetime
    subject_ref: str
    extended: bool = False
    extension_reason: str | None = None
    denial_reason: str | None = None
    corrections: dict[str, str] | None = None
    datasets_pending: list[str] = Field(default_factory=list)
    datasets_done: list[str] = Field(default_factory=list)
    datasets_failed: list[str] = Field(default_factory=list)
    outcome: dict[str, Any] | None = None


class RequestDetail(RequestView):
    """One request as the operator reviews it before approving: with what the subject wrote (their
    name, a complaint's or a child-data report's details). Only the admin API shows it."""

    name: str | None = Field(default=None, repr=False)
    details: str | None = Field(default=None, repr=False)
    # The authorized agent who filed it ({name, email}): whose authorization the operator checks.
    agent: dict[str, str] | None = Field(default=None, repr=False)
    events: list[RequestEvent] = Field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = Field(default_factory=dict)


class RequestPage(Model):
    requests: list[RequestView]
    next_cursor: str | None = None


def view(request: DataSubjectRequest) -> RequestView:
    return RequestView(
        request_id=request.request_id,
        type=request.type,
        status=request.status,
        regulation=request.regulation.value,
        created_at=request.created_at,
        due_at=request.due_at,
        subject_ref=request.subject_ref,
        extended=request.extended,
        extension_reason=request.extension_reason,
        denial_reason=request.denial_reason,
        corrections=request.corrections,
        datasets_pending=sorted(request.datasets_pending),
        datasets_done=sorted(request.datasets_done),
        datasets_failed=sorted(request.datasets_failed),
        outcome=request.outcome,
    )


def list_requests(status: Status, *, limit: int = 50, cursor: str | None = None) -> RequestPage:
    try:
        page, next_cursor = list_by_status(status, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    return RequestPage(requests=[view(r) for r in page], next_cursor=next_cursor)


def show(request_id: str) -> RequestDetail:
    request = get_request(request_id)
    return RequestDetail(
        **view(request).model_dump(),
        name=request.name,
        details=request.details,
        agent=request.agent,
        events=list_events(request_id),
        tasks=request_tasks.task_results(request_id),
    )


def approve(request_id: str, *, actor: str) -> RequestView:
    """awaiting_approval → pending, then fulfilment starts."""
    transition(
        request_id, Status.pending, allowed_from={Status.awaiting_approval}, actor=actor, detail={"approved": True}
    )
    fulfilment.start(request_id, actor=actor)
    return view(get_request(request_id))


def deny(request_id: str, *, reason: str, actor: str) -> RequestView:
    """Refuse a request that is not finished; the reason is emailed to the subject."""
    request = transition(
        request_id,
        Status.denied,
        allowed_from=OPEN_STATUSES,
        actor=actor,
        detail={"reason": reason},
        denial_reason=reason,
    )
    if request.email:
        certificates.send_denial(request.email, request, reason)
    return view(request)


def extend(request_id: str, *, reason: str, actor: str, now: datetime | None = None) -> RequestView:
    """Push the deadline back by the regulation's extension, once, telling the subject why."""
    request = get_request(request_id)
    if request.status in TERMINAL_STATUSES:
        raise InvalidTransition(f"a request that is {request.status.value} cannot be extended")
    if request.extended:
        raise ExtensionNotAllowed("this request was already extended once")
    limit = deadlines.extension_limit(request.regulation)
    if limit is None:
        raise ExtensionNotAllowed(f"{request.regulation.value} allows no extension")
    new_due = limit.after(request.due_at.astimezone(UTC))
    latest = deadlines.latest_extended_due_at(request.regulation, request.created_at)
    if latest is not None and new_due > latest:
        new_due = latest
    record = RequestSummaryRecord(pk_of(request_id), SUMMARY)
    extended = writes.update_if(
        record,
        [
            RequestSummaryRecord.extended.set(True),
            RequestSummaryRecord.extension_reason.set(reason),
            RequestSummaryRecord.due_at.set(iso(new_due)),
            RequestSummaryRecord.updated_at.set(iso(now or datetime.now(UTC))),
        ],
        (RequestSummaryRecord.extended == False)  # noqa: E712 - pynamodb condition
        & RequestSummaryRecord.status.is_in(*[s.value for s in OPEN_STATUSES]),
    )
    if not extended:
        raise ExtensionNotAllowed("this request was already extended, or is finished")
    add_event(request_id, "extended", actor=actor, detail={"reason": reason, "due_at": iso(new_due)})
    audit.append(
        "request.extended",
        actor=actor,
        request_id=request_id,
        subject_ref=request.subject_ref,
        details={"due_at": iso(new_due)},
    )
    updated = get_request(request_id)
    if updated.email:
        certificates.send_extension(updated.email, updated, reason, new_due)
    return view(updated)


def retry(request_id: str, *, actor: str) -> RequestView:
    fulfilment_resume.retry(request_id, actor=actor)
    return view(get_request(request_id))

"""The request state machine: the one way any part of Lethe reads a request or changes its status.

Contract for the rest of Lethe (fulfilment, deadlines, the admin API):

- `get_request(request_id) -> DataSubjectRequest`: raises RequestNotFound.
- `transition(request_id, to, *, allowed_from, actor, detail=None, now=None, **updates) -> DataSubjectRequest`:
  a conditional update from one of `allowed_from` (and the version read), an event row in the request's
  partition and an audit record whose subject is an HMAC reference. `updates` set summary attributes
  (e.g. `denial_reason="..."`, `datasets_pending={"accounts"}`, `due_at=<datetime>`); None removes one.
  Raises InvalidTransition when the request is not in an allowed status.
- `add_event(request_id, kind, *, actor="system", detail=None, now=None) -> RequestEvent`: history only.
- `list_events(request_id) -> list[RequestEvent]`, oldest first.
- `list_by_status(status, *, limit=50, cursor=None, due_before=None) -> (requests, next_cursor)`: by Query
  on the by_status_due index, earliest due first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from lethe.data import audit
from lethe.data import requests as repository
from lethe.data.requests import DataSubjectRequest, RequestEvent
from lethe.domain import TERMINAL_STATUSES, Status, utc_now
from lethe.errors import ConflictingWrite, InvalidTransition
from lethe.logic.agents import tell_agent
from lethe.logic.own_data import on_end as own_data_on_end

logger = Logger(child=True)

# Which status may follow which. A transition outside this map is refused even if the caller allows it.
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.identity_unverified: frozenset({Status.pending, Status.awaiting_approval, Status.canceled, Status.expired}),
    Status.pending: frozenset({Status.in_progress, Status.awaiting_approval, Status.canceled, Status.denied}),
    Status.awaiting_approval: frozenset({Status.pending, Status.in_progress, Status.denied, Status.canceled}),
    Status.in_progress: frozenset({Status.completed, Status.failed, Status.denied, Status.awaiting_approval}),
    Status.failed: frozenset({Status.in_progress, Status.denied}),
    Status.completed: frozenset(),
    Status.denied: frozenset(),
    Status.canceled: frozenset(),
    Status.expired: frozenset(),
}

_RETRIES = 20  # a lost race (status, version or the audit chain's head) is read again

__all__ = [
    "ALLOWED",
    "DataSubjectRequest",
    "RequestEvent",
    "add_event",
    "get_request",
    "list_by_status",
    "list_events",
    "transition",
]


def get_request(request_id: str) -> DataSubjectRequest:
    """The request (consistent read). Raises RequestNotFound."""
    return repository.get(request_id)


def transition(
    request_id: str,
    to: Status,
    *,
    allowed_from: Iterable[Status],
    actor: str,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
    **updates: Any,
) -> DataSubjectRequest:
    """Move a request to `to` if its status is one of `allowed_from` (and `ALLOWED` permits the step).

    The write is conditional on the status and on the version read, so two concurrent transitions
    cannot both win; a version race with a still-allowed status is retried. Writes an event row and
    an audit record ("request.<to>", subject as HMAC reference). Raises InvalidTransition or RequestNotFound.
    """
    allowed = frozenset(allowed_from)
    moment = utc_now(now)
    if to in TERMINAL_STATUSES:
        updates = {**own_data_on_end(moment), **updates}
    for _ in range(_RETRIES):
        current = repository.get(request_id)
        if current.status not in allowed or to not in ALLOWED[current.status]:
            raise InvalidTransition(f"a request that is {current.status.value} cannot become {to.value}")
        # The audit record is written in the transaction of the change: a transition whose write
        # succeeded can never lack its record (a separate append that failed would lose it for good).
        record = audit.prepare(
            f"request.{to.value}",
            actor=actor,
            request_id=request_id,
            subject_ref=current.subject_ref,
            details={"from": current.status.value, "to": to.value, **(detail or {})},
            at=moment,
        )
        try:
            changed = repository.change_status(
                current,
                to,
                allowed_from=allowed,
                actor=actor,
                detail=detail,
                now=moment,
                updates=updates,
                audit_record=record,
            )
        except ConflictingWrite:
            continue
        logger.info("request status changed", request_id=request_id, from_status=current.status, to_status=to)
        if current.agent:
            # The agent who filed it is told (an erasure's end may have dropped the agent's address already).
            tell_agent(changed.model_copy(update={"agent": current.agent}), to)
        if changed.controller is not None:
            # A controller's request (OpenDSR) tells the controller of the change; imported here, as
            # the callbacks read requests through this module's layer below.
            from lethe.logic.opendsr_callbacks import status_changed

            status_changed(changed, current.status)
        return changed
    raise ConflictingWrite("the request kept changing; try again")


def add_event(
    request_id: str,
    kind: str,
    *,
    actor: str = "system",
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> RequestEvent:
    """Append a non-transition event to a request's history (no PII in `detail`)."""
    return repository.put_event(request_id, kind, actor=actor, detail=detail, now=utc_now(now))


def list_events(request_id: str) -> list[RequestEvent]:
    """A request's history, oldest first."""
    return repository.events(request_id)


def list_by_status(
    status: Status, *, limit: int = 50, cursor: str | None = None, due_before: datetime | None = None
) -> tuple[list[DataSubjectRequest], str | None]:
    """One page of requests in `status`, earliest due first, and the cursor of the next page."""
    return repository.query_by_status(status, due_before=due_before, limit=limit, cursor=cursor)

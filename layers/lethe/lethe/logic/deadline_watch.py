"""The daily deadline watcher: a digest to operators of requests due within a week and overdue,
the OverdueRequests metric, and the expiry of requests never verified.

Requests are found by Query on the by_status_due index, one status at a time, never by Scan. The
statuses watched are those an operator must act on: pending, awaiting_approval, in_progress and
failed. A request still identity_unverified is not yet the operator's to answer; it expires
(lethe.logic.intake.expire_unverified). The digest names requests by id, type, status and due
date only: no subject's contact details.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from lethe.data.mail import send_email
from lethe.domain import RequestType, Status
from lethe.logic import fulfilment, intake
from lethe.logic.requests import list_by_status
from lethe.settings import get_settings

WATCHED = (Status.pending, Status.awaiting_approval, Status.in_progress, Status.failed)
HORIZON = timedelta(days=7)


class DueRequest(BaseModel):
    request_id: str
    type: RequestType
    status: Status
    due_at: datetime
    extended: bool = False

    def days_left(self, now: datetime) -> int:
        return (self.due_at - now).days


class DeadlineSummary(BaseModel):
    now: datetime
    overdue: list[DueRequest]
    due_soon: list[DueRequest]
    expired_unverified: int
    digest_sent: bool
    resumed: int = 0  # stalled requests moved on (lethe.logic.fulfilment.resume_stalled)


def due_requests(now: datetime) -> tuple[list[DueRequest], list[DueRequest]]:
    """(overdue, due within 7 days), each earliest due first."""
    horizon = now + HORIZON
    found: list[DueRequest] = []
    for status in WATCHED:
        cursor: str | None = None
        while True:
            page, cursor = list_by_status(status, due_before=horizon, limit=100, cursor=cursor)
            found.extend(
                DueRequest(request_id=r.request_id, type=r.type, status=r.status, due_at=r.due_at, extended=r.extended)
                for r in page
            )
            if cursor is None:
                break
    found.sort(key=lambda r: r.due_at)
    return [r for r in found if r.due_at <= now], [r for r in found if r.due_at > now]


def _line(request: DueRequest, now: datetime) -> str:
    days = request.days_left(now)
    when = f"{-days} days overdue" if request.due_at <= now else f"due in {days} days"
    extended = ", extended" if request.extended else ""
    return (
        f"  {request.request_id}  {request.type.value:<20} {request.status.value:<18} "
        f"due {request.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({when}{extended})"
    )


def digest_text(now: datetime, overdue: list[DueRequest], due_soon: list[DueRequest]) -> str:
    base = get_settings().public_base_url.rstrip("/")
    parts = [f"Lethe deadline digest for {now.astimezone(UTC):%Y-%m-%d}", ""]
    parts.append(f"Overdue: {len(overdue)}")
    parts.extend(_line(r, now) for r in overdue)
    parts.append("")
    parts.append(f"Due within {HORIZON.days} days: {len(due_soon)}")
    parts.extend(_line(r, now) for r in due_soon)
    parts += ["", f"Open a request with GET {base}/admin/requests/<id>; extend it with POST .../extend."]
    return "\n".join(parts) + "\n"


def watch(now: datetime) -> DeadlineSummary:
    """Find what is due, resume stalled requests, expire unverified ones, then email the digest (only when something is
    due or overdue)."""
    now = now.astimezone(UTC)
    # The digest lists the requests as found; stalled ones are then resumed, each on its own, so one
    # failure does not hold up the rest.
    overdue, due_soon = due_requests(now)
    resumed = fulfilment.resume_stalled(now)
    expired = intake.expire_unverified(now)
    sent = False
    if overdue or due_soon:
        subject = f"Lethe: {len(overdue)} overdue, {len(due_soon)} due within {HORIZON.days} days"
        send_email(get_settings().operator_email, subject, digest_text(now, overdue, due_soon))
        sent = True
    return DeadlineSummary(
        now=now, overdue=overdue, due_soon=due_soon, expired_unverified=expired, digest_sent=sent, resumed=resumed
    )

"""The daily deadline watcher: a digest to operators of requests due within a week and overdue,
the OverdueRequests metric, and the expiry of requests never verified.

Requests are found by Query on the by_status_due index, one status at a time, never by Scan. The
statuses watched are those an operator must act on: pending, awaiting_approval, in_progress and
failed. A request still identity_unverified is not yet the operator's to answer; it expires
(lethe.logic.intake.expire_unverified). The digest names requests by id, type, status and due
date only: no subject's contact details.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from aws_lambda_powertools import Logger
from pydantic import Field

from lethe.data import requests as repository
from lethe.data.mail import send_email
from lethe.domain import TERMINAL_STATUSES, Model, RequestType, Status
from lethe.logic import fulfilment_resume, intake, manual_tasks, recreation
from lethe.logic.requests import list_by_status
from lethe.settings import get_settings

logger = Logger(child=True)
T = TypeVar("T")
WATCHED = (Status.pending, Status.awaiting_approval, Status.in_progress, Status.failed)
# Counted for the dashboard's "requests by status"; terminal statuses grow forever and are not.
OPEN = tuple(status for status in Status if status not in TERMINAL_STATUSES)
HORIZON = timedelta(days=7)


class DueRequest(Model):
    request_id: str
    type: RequestType
    status: Status
    due_at: datetime
    extended: bool = False

    def days_left(self, now: datetime) -> int:
        return (self.due_at - now).days


class DeadlineSummary(Model):
    now: datetime
    overdue: list[DueRequest]
    due_soon: list[DueRequest]
    expired_unverified: int
    digest_sent: bool
    resumed: int = 0  # stalled requests moved on (lethe.logic.fulfilment_resume.resume_stalled)
    failed: list[str] = Field(default_factory=list)  # jobs of this run that failed; the next run does them again
    open_by_status: dict[str, int] = Field(default_factory=dict)  # after this run's expiries and resumptions
    recreated: int = 0  # erased subjects' data written again in the last day (lethe.logic.recreation)
    manual_reminders: int = 0  # owners of manual tasks still open, reminded (lethe.logic.manual_tasks)


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


def _recreated_line(found: recreation.Recreation) -> str:
    return (
        f"  {found.at:%Y-%m-%d %H:%M} UTC  {found.dataset}: data of subject {found.subject_ref[:20]}… written again "
        f"(erased {found.erased_at:%Y-%m-%d}); not erased automatically, see the audit (recreation.detected)"
    )


def digest_text(
    now: datetime,
    overdue: list[DueRequest],
    due_soon: list[DueRequest],
    recreated: list[recreation.Recreation] | None = None,
) -> str:
    base = get_settings().public_base_url.rstrip("/")
    parts = [f"Lethe deadline digest for {now.astimezone(UTC):%Y-%m-%d}", ""]
    parts.append(f"Overdue: {len(overdue)}")
    parts.extend(_line(r, now) for r in overdue)
    parts.append("")
    parts.append(f"Due within {HORIZON.days} days: {len(due_soon)}")
    parts.extend(_line(r, now) for r in due_soon)
    if recreated:
        parts += ["", f"Erased subjects whose data was written again in the last day: {len(recreated)}"]
        parts.extend(_recreated_line(r) for r in recreated)
    parts += ["", f"Open a request with GET {base}/admin/requests/<id>; extend it with POST .../extend."]
    return "\n".join(parts) + "\n"


def watch(now: datetime) -> DeadlineSummary:
    """Find what is due, resume stalled requests, expire unverified ones, then email the digest (only when something is
    due or overdue). Each job runs even when another failed: a failed digest query must not keep
    requests from expiring. The summary names the jobs that failed."""
    now = now.astimezone(UTC)
    failed: list[str] = []

    def job(name: str, run: Callable[[], T], default: T) -> T:
        try:
            return run()
        except Exception:  # reported in the summary, and the run then fails
            logger.exception("deadline watch job failed; the next run does it again", job=name)
            failed.append(name)
            return default

    nothing: tuple[list[DueRequest], list[DueRequest]] = ([], [])
    overdue, due_soon = job("find_due", lambda: due_requests(now), nothing)
    resumed = job("resume_stalled", lambda: fulfilment_resume.resume_stalled(now), 0)
    expired = job("expire_unverified", lambda: intake.expire_unverified(now), 0)
    no_counts: dict[str, int] = {}
    open_by_status = job("count_open", lambda: {s.value: repository.count_by_status(s) for s in OPEN}, no_counts)
    none: list[recreation.Recreation] = []
    recreated = job("find_recreated", lambda: recreation.seen_between(now - timedelta(days=1), now), none)
    reminded = job("remind_manual_tasks", lambda: manual_tasks.remind(now), 0)
    sent = False
    if overdue or due_soon or recreated:
        subject = f"Lethe: {len(overdue)} overdue, {len(due_soon)} due within {HORIZON.days} days"
        if recreated:
            subject += f", {len(recreated)} erased subjects' data written again"
        text = digest_text(now, overdue, due_soon, recreated)
        sent = bool(job("send_digest", lambda: send_email(get_settings().operator_email, subject, text), ""))
    return DeadlineSummary(
        now=now,
        overdue=overdue,
        due_soon=due_soon,
        expired_unverified=expired,
        digest_sent=sent,
        resumed=resumed,
        failed=failed,
        open_by_status=open_by_status,
        recreated=len(recreated),
        manual_reminders=reminded,
    )

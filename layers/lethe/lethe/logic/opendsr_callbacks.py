"""OpenDSR status callbacks: each status change of a controller's request, as OpenDSR names statuses,
is POSTed, signed, to every `status_callback_urls` entry of the request.

- The body is built when the status changes (so a late delivery still says what happened then) and
  queued, one message per URL, on the callback queue; the delivery worker signs the exact bytes it
  sends (`X-OpenDSR-Signature`, lethe.logic.signing) and POSTs them.
- A delivery that fails (no answer, or not 2xx) is recorded in the request's history and retried by
  the queue with a growing delay (`backoff_seconds`); after the queue's maxReceiveCount it lands in
  the dead-letter queue, which has an alarm, and the operator sees each failure in
  `GET /admin/requests/{id}` (and `lethe requests show`).
- A body holds the controller's ids, the status and times, never an identity value.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger
from pydantic import Field

from lethe.data import queues
from lethe.data.models import RequestEventRecord
from lethe.data.requests import DataSubjectRequest, pk_of, put_event
from lethe.domain import Model, RequestType, Status
from lethe.errors import LetheError
from lethe.settings import get_settings

logger = Logger(child=True)

LINK_SK = "OPENDSR"
CALLBACK_TIMEOUT_SECONDS = 10
MAX_BACKOFF_SECONDS = 900
# Lethe statuses as OpenDSR names them: waiting in any form is pending; every way to end unfulfilled
# is cancelled; a failed request is still Lethe's to finish (an operator retries it).
OPENDSR_STATUS: dict[Status, str] = {
    Status.identity_unverified: "pending",
    Status.pending: "pending",
    Status.awaiting_approval: "pending",
    Status.in_progress: "in_progress",
    Status.failed: "in_progress",
    Status.completed: "completed",
    Status.canceled: "cancelled",
    Status.denied: "cancelled",
    Status.expired: "cancelled",
}
_EXPORT_TYPES = frozenset({RequestType.access, RequestType.portability})


class CallbackFailed(LetheError):
    """A controller's callback URL did not take a status callback; the queue retries it."""

    code = "callback_failed"


class CallbackMessage(Model):
    """One queued callback: the exact body to sign and POST to one URL."""

    request_id: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=8, max_length=2048)
    body: str = Field(min_length=2, max_length=8192)
    request_status: str


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def link_of_request(request_id: str) -> dict[str, Any] | None:
    """The controller's reference a request was created with (lethe.logic.opendsr), if any."""
    rows = list(RequestEventRecord.query(pk_of(request_id), RequestEventRecord.sk == LINK_SK, consistent_read=True))
    return dict(rows[0].detail or {}) if rows else None


def results_of(request: DataSubjectRequest) -> tuple[str | None, int | None]:
    """results_url (the export's signed, expiring link) and results_count, once an access or
    portability request is completed."""
    if request.status is not Status.completed or request.type not in _EXPORT_TYPES:
        return None, None
    from lethe.logic.exports import export_link  # exports reads the vault's models: only when needed

    items = ((request.outcome or {}).get("export") or {}).get("items")
    return export_link(request.request_id), items if isinstance(items, int) else None


def status_changed(request: DataSubjectRequest, previous: Status | None = None) -> int:
    """Queue a callback to each of the controller's URLs if the OpenDSR status changed. Never raises:
    the status change is already written; a callback that could not be queued is recorded and logged.
    Returns how many were queued."""
    if request.controller is None:
        return 0
    status = OPENDSR_STATUS[request.status]
    if previous is not None and OPENDSR_STATUS[previous] == status:
        return 0
    try:
        link = link_of_request(request.request_id)
        if not link or not link.get("status_callback_urls"):
            return 0
        url, count = results_of(request)
        queued = 0
        for callback_url in link["status_callback_urls"]:
            payload: dict[str, Any] = {
                "controller_id": link["controller_id"],
                "expected_completion_time": rfc3339(request.due_at),
                "status_callback_url": callback_url,
                "subject_request_id": link["subject_request_id"],
                "request_status": status,
                "api_version": "2.0",
            }
            if url is not None:
                payload["results_url"] = url
            if count is not None:
                payload["results_count"] = count
            message = CallbackMessage(
                request_id=request.request_id, url=callback_url, body=json.dumps(payload), request_status=status
            )
            queues.send(get_settings().opendsr_callback_queue_url, message.model_dump_json())
            queued += 1
        return queued
    except Exception:  # the transition stands; the operator sees the missing callback in the history
        logger.exception("status callback not queued", request_id=request.request_id, request_status=status)
        try:
            put_event(
                request.request_id, "callback_not_queued", detail={"request_status": status}, now=datetime.now(UTC)
            )
        except Exception:
            logger.exception("callback failure not recorded", request_id=request.request_id)
        return 0


def backoff_seconds(receive_count: int) -> int:
    """The wait before the next try: 10 s, 20 s, 40 s, ... up to 15 minutes."""
    return int(min(MAX_BACKOFF_SECONDS, 10 * 2 ** max(0, receive_count - 1)))


def deliver(message: CallbackMessage, *, attempt: int = 1) -> dict[str, Any]:
    """Sign the body and POST it. Raises CallbackFailed (recorded in the request's history) unless the
    controller answered 2xx."""
    from lethe.logic import signing

    body = message.body.encode()
    parts = urlsplit(message.url)
    if parts.scheme not in ("https", "http"):
        raise CallbackFailed("the callback URL is not http(s)")
    headers = {"Content-Type": "application/json", **signing.signature_headers(body)}
    outcome: int | str
    try:
        # The scheme is checked above and at intake (https, or http to this machine only).
        post = urllib.request.Request(message.url, data=body, headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(  # noqa: S310  # nosec B310
            post,
            timeout=CALLBACK_TIMEOUT_SECONDS,
        ) as answer:
            outcome = int(answer.status)
    except urllib.error.HTTPError as exc:
        outcome = int(exc.code)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        outcome = type(exc).__name__
    detail = {"host": parts.hostname, "request_status": message.request_status, "attempt": attempt, "answer": outcome}
    now = datetime.now(UTC)
    if isinstance(outcome, int) and 200 <= outcome < 300:
        put_event(message.request_id, "callback_delivered", detail=detail, now=now)
        return detail
    put_event(message.request_id, "callback_failed", detail=detail, now=now)
    logger.warning("status callback failed", request_id=message.request_id, attempt=attempt, answer=outcome)
    raise CallbackFailed(f"the callback was answered {outcome}")


# ------------------------------------------------------------------ the operator's view of dead letters


class DeadCallback(Model):
    """A callback that kept failing and reached the dead-letter queue (no body: ids, host and status)."""

    request_id: str
    host: str | None
    request_status: str
    receive_count: int
    first_sent_at: datetime | None


def _dead_letter(message: dict[str, Any]) -> DeadCallback:
    attributes = message.get("Attributes") or {}
    sent = attributes.get("SentTimestamp")
    try:
        callback = CallbackMessage.model_validate_json(message["Body"])
        request_id, host, status = callback.request_id, urlsplit(callback.url).hostname, callback.request_status
    except ValueError:
        request_id, host, status = "unreadable", None, "unknown"
    return DeadCallback(
        request_id=request_id,
        host=host,
        request_status=status,
        receive_count=int(attributes.get("ApproximateReceiveCount", "0")),
        first_sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
    )


def dead_letters() -> list[DeadCallback]:
    """Up to 10 callbacks waiting in the dead-letter queue (a look: they stay there)."""
    return [_dead_letter(m) for m in queues.peek(get_settings().opendsr_callback_dlq_url, limit=10)]


def redrive(*, limit: int = 100) -> int:
    """Move up to `limit` dead callbacks back to the callback queue (after the controller's endpoint is
    fixed): each is sent again before it leaves the dead-letter queue, so none is lost. Returns the count."""
    settings = get_settings()
    return queues.move(settings.opendsr_callback_dlq_url, settings.opendsr_callback_queue_url, limit=limit)

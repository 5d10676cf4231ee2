"""Recipients told (GDPR Art. 19): when an erasure, rectification or restriction completes, every
recipient with `notify` of every dataset the request touched is told, once.

- `tell` (at finalization) records one notice per (dataset, recipient) in the request's partition,
  tries it once at once and queues the ones that did not go: finalization never waits on a
  recipient, and the certificate lists who was told, when, and who is still pending.
- `deliver` sends one notice: an email, or a JSON POST signed with HMAC-SHA256 of the raw body under
  the recipient's secret (`X-Lethe-Signature: sha256=<hex>`; the secret is read from Secrets Manager,
  never held in the inventory). Every attempt sends the same body with the same `X-Lethe-Notice-Id`,
  so a receiver can drop a repeat; a notice recorded as sent is never sent again.
- The queue (RecipientNoticeQueue) retries a failed one with backoff; its last receive marks it
  failed, listed by `failed` (admin API, `lethe recipients failed`) until an operator's `retry`.

A notice names the request, its type, the dataset, the subject as an HMAC and the moment: no
address, name or value of the subject.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.error
import urllib.request
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ConfigDict, Field

from lethe.data import audit, mail, notices, queues
from lethe.data.faults import code_of
from lethe.data.models import RecipientNoticeRecord
from lethe.data.requests import DataSubjectRequest, pk_of
from lethe.data.writes import get_or_none, save_if, update_if
from lethe.domain import Model, RequestType, Tally, utc_stamp
from lethe.errors import ConfigurationError, InvalidTransition, RequestNotFound
from lethe.inventory import EmailNotice, Inventory, Recipient, WebhookNotice, get_inventory
from lethe.settings import get_settings

logger = Logger(child=True)

NOTICE_PREFIX = "NOTICE_TO#"
FAILED_STATUS = "notice_failed"
SIGNATURE_HEADER = "X-Lethe-Signature"
NOTICE_ID_HEADER = "X-Lethe-Notice-Id"
TOLD_TYPES = frozenset(
    {RequestType.erasure, RequestType.child_data_report, RequestType.rectification, RequestType.restriction}
)
_WHAT = {
    RequestType.erasure: "erasure",
    RequestType.child_data_report: "erasure",
    RequestType.rectification: "rectification",
    RequestType.restriction: "restriction",
}
_ASK = {
    "erasure": "erase the personal data of this subject that we disclosed to you (GDPR Art. 17 and 19)",
    "rectification": "correct the personal data of this subject that we disclosed to you (GDPR Art. 16 and 19)",
    "restriction": "restrict the processing of this subject's data that we disclosed to you (GDPR Art. 18 and 19)",
}
# A task result with any of these above zero touched its dataset.
_TOUCHED = ("found", "items", "deleted", "anonymized", "isolated", "rectified", "restricted")


class NoticeNotDelivered(Exception):
    """One attempt failed; the reason names no person (an HTTP status, a timeout)."""


class NoticeMessage(Model):
    """The body of one RecipientNoticeQueue message."""

    request_id: str = Field(min_length=1, max_length=64)
    notice_id: str = Field(min_length=1, max_length=120)


class NoticeView(Model):
    """A notice as the operator and the certificate see it, read from its row."""

    model_config = ConfigDict(from_attributes=True)

    request_id: str
    notice_id: str
    dataset: str
    recipient: str
    channel: str
    state: str
    attempts: Tally
    told_at: str | None = None
    last_error: str | None = None


def notice_id(dataset: str, recipient: str) -> str:
    """Stable per (dataset, recipient): readable, and unique by a digest of the full name."""
    slug = re.sub(r"[^a-z0-9]+", "-", recipient.lower()).strip("-")[:40] or "recipient"
    digest = hashlib.sha256(f"{dataset}\0{recipient}".encode()).hexdigest()[:8]
    return f"{dataset}.{slug}.{digest}"


def touched(results: dict[str, dict[str, Any]]) -> list[str]:
    """The datasets a request touched: it found or changed something there, or a person did the work."""
    return sorted(
        name
        for name, result in results.items()
        if result.get("by_hand") or any(int(result.get(k) or 0) > 0 for k in _TOUCHED)
    )


def view(row: RecipientNoticeRecord) -> NoticeView:
    return NoticeView.model_validate(row, from_attributes=True)


# ------------------------------------------------------------------ at finalization


def tell(request: DataSubjectRequest, results: dict[str, dict[str, Any]], inventory: Inventory) -> list[NoticeView]:
    """Record and send every notice the request owes (once, however often finalization runs). A notice
    that does not go at once is queued for retries; finalization goes on either way."""
    if request.type not in TOLD_TYPES:
        return []
    views: list[NoticeView] = []
    for name in touched(results):
        if name not in inventory.datasets:
            continue
        for recipient in inventory.dataset(name).notified_recipients:
            row = _ensure(request, name, recipient)
            if row.state == "pending" and not row.queued:
                try:
                    deliver(row, recipient)
                except NoticeNotDelivered:
                    queue(row)
            views.append(view(row))
    return views


def _ensure(request: DataSubjectRequest, dataset: str, recipient: Recipient) -> RecipientNoticeRecord:
    ident = notice_id(dataset, recipient.name)
    row = RecipientNoticeRecord(
        pk_of(request.request_id),
        NOTICE_PREFIX + ident,
        request_id=request.request_id,
        notice_id=ident,
        dataset=dataset,
        recipient=recipient.name,
        channel="email" if isinstance(recipient.notify, EmailNotice) else "webhook",
        state="pending",
        created_at=utc_stamp(),
        request_type=_WHAT[request.type],
        subject_ref=request.subject_ref,
    )
    return row if save_if(row, RecipientNoticeRecord.sk.does_not_exist()) else _get(request.request_id, ident)


def _get(request_id: str, ident: str) -> RecipientNoticeRecord:
    row = get_or_none(RecipientNoticeRecord, pk_of(request_id), NOTICE_PREFIX + ident)
    if row is None:
        raise RequestNotFound(f"request {request_id} has no notice {ident}")
    return row


def queue(row: RecipientNoticeRecord, *, delay_seconds: int = 0) -> None:
    """Hand a notice to the retry queue, and note it (a second finalization does not queue it again)."""
    message = NoticeMessage(request_id=row.request_id, notice_id=row.notice_id)
    queues.send(get_settings().recipient_notice_queue_url, message.model_dump_json(), delay_seconds=delay_seconds)
    row.update(actions=[RecipientNoticeRecord.queued.set(True)])


# ------------------------------------------------------------------ one attempt


def body_of(row: RecipientNoticeRecord) -> bytes:
    """The notice's JSON body: the same bytes on every attempt (it is built from the row alone)."""
    notice = {
        "notice_id": row.notice_id,
        "request_id": row.request_id,
        "type": row.request_type,
        "dataset": row.dataset,
        "recipient": row.recipient,
        "subject_ref": row.subject_ref,
        "at": row.created_at,
        "asks": _ASK.get(row.request_type, row.request_type),
        "controller": "CaféX Communications Inc.",
    }
    return json.dumps(notice, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_secret(reference: str) -> bytes:
    """The recipient's signing key, read from Secrets Manager by reference. A JSON secret holds it under
    "value" (as template.yaml generates one); any other secret string is the key itself."""
    try:
        raw = notices.webhook_secret_string(reference)
    except Exception as exc:  # an unreadable secret is one failed attempt: retried, then failed, visibly
        raise NoticeNotDelivered(f"webhook secret unreadable ({code_of(exc) or type(exc).__name__})") from exc
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    value = parsed.get("value") if isinstance(parsed, dict) else None
    return str(value if value is not None else raw).encode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A notice goes to the URL in the inventory only: a redirect is a failed attempt, not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    timeout = get_settings().recipient_webhook_timeout_seconds
    try:
        # The URL is the inventory's, checked at load to be https (or http to this machine).
        with _OPENER.open(request, timeout=timeout) as answer:  # nosec B310
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        raise NoticeNotDelivered(f"HTTP {exc.code}") from exc
    except TimeoutError as exc:
        raise NoticeNotDelivered("timed out") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NoticeNotDelivered("timed out" if isinstance(reason, TimeoutError) else "unreachable") from exc


def _send(row: RecipientNoticeRecord, recipient: Recipient) -> None:
    body = body_of(row)
    notify = recipient.notify
    if isinstance(notify, WebhookNotice):
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Lethe-Recipient-Notice/1",
            NOTICE_ID_HEADER: row.notice_id,
            SIGNATURE_HEADER: signature(body, webhook_secret(notify.secret)),
        }
        _post(notify.webhook, body, headers)
    elif isinstance(notify, EmailNotice):
        text = (
            f"We were asked to {_ASK.get(row.request_type, row.request_type)}.\n\n"
            f"Dataset: {row.dataset}\nRequest: {row.request_id}\nSubject reference (HMAC): {row.subject_ref}\n"
            f"Completed: {row.created_at}\n\nPlease do the same in your systems. The notice as JSON:\n"
            f"{body.decode('utf-8')}\n"
        )
        try:
            mail.send_email(notify.email, f"{row.request_type.capitalize()} notice {row.request_id}", text)
        except Exception as exc:  # SES refused or failed: retried by the queue
            raise NoticeNotDelivered(f"email not sent ({code_of(exc) or type(exc).__name__})") from exc


def _recipient_of(row: RecipientNoticeRecord) -> Recipient | None:
    inventory = get_inventory()
    if row.dataset not in inventory.datasets:
        return None
    return next((r for r in inventory.dataset(row.dataset).notified_recipients if r.name == row.recipient), None)


def deliver(row: RecipientNoticeRecord, recipient: Recipient | None = None, *, final: bool = False) -> str:
    """One attempt. Returns "sent", or "already sent" for a notice recorded as sent. Raises
    NoticeNotDelivered after recording the attempt (and, if `final`, marking the notice failed)."""
    if row.state == "sent":
        return "already sent"
    recipient = recipient or _recipient_of(row)
    try:
        if recipient is None:
            raise NoticeNotDelivered("recipient no longer in the inventory")
        _send(row, recipient)
    except NoticeNotDelivered as exc:
        _record_failure(row, str(exc), final=final)
        logger.warning("recipient notice not delivered", request_id=row.request_id, notice_id=row.notice_id)
        raise
    notices.record_sent(row, told_at=utc_stamp())  # retried in place: it must not go twice
    # Evidence that the recipient was told: the recipient's name and channel, the subject as an HMAC.
    audit.append(
        "recipient.told",
        request_id=row.request_id,
        subject_ref=row.subject_ref,
        dataset=row.dataset,
        details={"recipient": row.recipient, "channel": row.channel, "notice_id": row.notice_id},
    )
    logger.info("recipient told", request_id=row.request_id, notice_id=row.notice_id, channel=row.channel)
    return "sent"


def _record_failure(row: RecipientNoticeRecord, reason: str, *, final: bool) -> None:
    actions: list[Any] = [
        RecipientNoticeRecord.attempts.add(1),
        RecipientNoticeRecord.last_error.set(reason[:200]),
    ]
    if final:
        # Into the by_status_due index under a status no request has: the operator's list of failures.
        actions += [
            RecipientNoticeRecord.state.set("failed"),
            RecipientNoticeRecord.status.set(FAILED_STATUS),
            RecipientNoticeRecord.due_at.set(utc_stamp()),
        ]
    update_if(row, actions, RecipientNoticeRecord.state != "sent")  # sent meanwhile: the failure is moot


def deliver_queued(message: NoticeMessage, *, receive: int) -> dict[str, Any]:
    """The queue's attempt: the last receive the redrive policy allows marks the notice failed."""
    try:
        row = _get(message.request_id, message.notice_id)
    except RequestNotFound:
        logger.warning("notice for an unknown row dropped", request_id=message.request_id)
        return {"notice_id": message.notice_id, "skipped": "no such notice"}
    if row.state == "failed":
        # Already given up on: it waits for an operator's retry (which queues it anew).
        raise NoticeNotDelivered("failed; waiting for an operator's retry")
    final = receive >= get_settings().recipient_notice_max_receives
    return {"notice_id": message.notice_id, "result": deliver(row, final=final)}


def backoff_seconds(receive: int) -> int:
    """Exponential: base, 2 x base, 4 x base, ... capped at 15 minutes."""
    base = get_settings().recipient_notice_backoff_seconds
    return int(min(base * 2 ** max(receive - 1, 0), 900))


# ------------------------------------------------------------------ the operator


def for_request(request_id: str) -> list[NoticeView]:
    rows = RecipientNoticeRecord.query(
        pk_of(request_id), RecipientNoticeRecord.sk.startswith(NOTICE_PREFIX), consistent_read=True
    )
    return [view(row) for row in rows]


def failed(limit: int = 100) -> list[NoticeView]:
    """Notices that kept failing, oldest first (a Query of the by_status_due index)."""
    rows = RecipientNoticeRecord.by_state.query(FAILED_STATUS, limit=limit)
    return [view(row) for row in rows if row.sk.startswith(NOTICE_PREFIX)]


def retry(request_id: str, ident: str) -> NoticeView:
    """An operator sends a failed notice again: back to pending, out of the failures list, queued."""
    row = _get(request_id, ident)
    if row.state != "failed":
        raise InvalidTransition(f"only a failed notice can be retried; this one is {row.state}")
    pending = [
        RecipientNoticeRecord.state.set("pending"),
        RecipientNoticeRecord.status.remove(),
        RecipientNoticeRecord.due_at.remove(),
    ]
    if not update_if(row, pending, RecipientNoticeRecord.state == "failed"):
        raise InvalidTransition("the notice changed meanwhile; list it again")
    if not get_settings().recipient_notice_queue_url:
        raise ConfigurationError("LETHE_RECIPIENT_NOTICE_QUEUE_URL is not set")
    queue(row)
    return view(row)

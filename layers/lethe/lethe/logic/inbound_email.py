"""Intake by email (DESIGN.md, "Intake by email"): a message to the privacy address, stored raw by SES
in the inbound bucket, becomes a request, an item of the operator's inbox, or nothing at all.

- Mail that a machine wrote (auto-replies, bounces and other reports, `Auto-Submitted`, list and bulk
  precedence, a null envelope sender, mail from Lethe's own addresses) and mail SES marks as spam or
  infected never creates a request and is never answered: no mail loops.
- A message that asks for one thing Lethe knows ("please delete my data") becomes a request of that
  type for the sender's address, through the same intake as the form (`intake.submit`): it starts
  identity_unverified, the code goes to that address, and the same submission limits apply.
- Anything else goes to the operator's inbox and the sender gets one acknowledgement (limited per
  address and hour). A message without a usable sender is kept for the operator, unanswered.
- Subject-supplied text is data: the classification reads it, the inbox stores it flattened (no
  control characters), replies never quote it, and logs hold only outcomes, reasons and sizes.
- A message delivered again (Lambda retries an asynchronous invocation) has the effect of the first:
  the outcome is recorded per message, the inbox item id and the submission key derive from it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from pydantic import ConfigDict, Field, model_validator

from lethe.data import audit, inbox, mail
from lethe.data.inbox import InboxItem
from lethe.data.models import ControlRecord, bind_models
from lethe.data.writes import get_or_none, save_if
from lethe.domain import Model, RequestType, is_plain_address, utc_now
from lethe.errors import InvalidTransition, RateLimited
from lethe.keys import key_ring, normalize_email
from lethe.logic import intake, ratelimit
from lethe.settings import get_settings

logger = Logger(child=True)

Outcome = Literal["request", "inbox", "ignored", "rate_limited"]
_MESSAGE_ID = re.compile(r"[A-Za-z0-9._+=-]{1,128}")
_HEADER_BYTES = 64 * 1024
_CLASSIFY_CHARS = 4000
_EXCERPT_CHARS = 2000

# What a sentence must say for Lethe to know the request (lowercased, whitespace collapsed).
_ASKS: dict[RequestType, tuple[str, ...]] = {
    RequestType.erasure: (
        r"\bdelet(e|ion)\b",
        r"\beras(e|ure)\b",
        r"\bforget (about )?me\b",
        r"right to be forgotten",
        r"\bremove (all )?(of )?my (personal )?(data|information|details|account)",
    ),
    RequestType.access: (
        r"\b(copy|access|see|know|view)( to| of)?( all)?( of)?( the)?( my)? (personal )?(data|information)\b",
        r"\bsubject access\b",
        r"\bd?sar\b",
        r"what (personal )?(data|information) (do )?you (hold|have|keep|store)",
    ),
    RequestType.portability: (r"\bportab", r"\bexport (of )?my (data|information)", r"machine[- ]readable"),
    RequestType.marketing_opt_out: (
        r"\bunsubscribe\b",
        r"\bopt[- ]?out\b",
        r"\bstop (sending|emailing|mailing)\b",
        r"\bno more (marketing|emails|newsletters)\b",
        r"\bdo not sell\b",
    ),
    RequestType.restriction: (r"\brestrict(ion of)?( the)? processing\b",),
    RequestType.objection: (r"\bobject(ion)? to\b",),
}
_COMPILED = {kind: [re.compile(p) for p in patterns] for kind, patterns in _ASKS.items()}

# RFC 3834 and the usual vacation and list markers: a machine wrote the message.
_MACHINE_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
_MACHINE_HEADERS = ("x-autoreply", "x-autorespond", "x-auto-response-suppress", "list-id", "list-unsubscribe")
_MACHINE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+@.-]|$)")
_REPORT_TYPES = frozenset({"multipart/report", "message/delivery-status", "message/disposition-notification"})


class SesMail(Model):
    model_config = ConfigDict(extra="ignore")

    message_id: str = Field(alias="messageId")
    source: str = ""
    timestamp: datetime | None = None


class SesVerdict(Model):
    model_config = ConfigDict(extra="ignore")

    status: str = "PASS"


class SesReceipt(Model):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    spam: SesVerdict = Field(default_factory=SesVerdict, alias="spamVerdict")
    virus: SesVerdict = Field(default_factory=SesVerdict, alias="virusVerdict")


class SesNotice(Model):
    """One record of the event SES's Lambda action sends (the message itself is in the bucket)."""

    model_config = ConfigDict(extra="ignore")

    mail: SesMail
    receipt: SesReceipt = Field(default_factory=SesReceipt)


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    reason: str
    request_id: str | None = None
    item_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def notices(event: dict[str, Any]) -> list[SesNotice]:
    return [SesNotice.model_validate(r.get("ses") or {}) for r in event.get("Records") or [] if isinstance(r, dict)]


# ------------------------------------------------------------------ reading the message


def parse(raw: bytes, *, whole: bool = True) -> Message:
    """The message; a message too large to read whole is read for its headers only."""
    if not whole:
        return BytesHeaderParser(policy=policy.default).parsebytes(raw[:_HEADER_BYTES])
    return BytesParser(policy=policy.default).parsebytes(raw)


def header(message: Message, name: str) -> str | None:
    """A header as flat text, or None. A header the library cannot read (malformed encoded words,
    broken address syntax) is None: the mail is untrusted input and must not stop the function."""
    try:
        value = message.get(name)
    except Exception:  # any parse failure of an untrusted header means "unreadable"
        return None
    return None if value is None else mail.plain_text(str(value), limit=998)


def sender_of(message: Message) -> str | None:
    """The one plain From address, normalized; None when there is none, or several."""
    try:
        values = message.get_all("From") or []
        pairs = getaddresses([str(v) for v in values])
    except Exception:  # an unreadable From is the same as none
        return None
    addresses = [address for _, address in pairs if address]
    if len(values) != 1 or len(addresses) != 1 or not is_plain_address(addresses[0]):
        return None
    return normalize_email(addresses[0])


def body_text(message: Message) -> str:
    """The readable text of the message (the plain part, else the HTML part without its markup)."""
    if not isinstance(message, EmailMessage):
        return ""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        if part is None:
            return ""
        content = part.get_content()
    except Exception:  # a malformed MIME body or unknown charset: no text to read
        return ""
    text = content if isinstance(content, str) else ""
    if part.get_content_subtype() == "html":
        text = re.sub(r"<[^>]*>", " ", text)
    return text


def machine_written(message: Message, *, envelope_sender: str, own: Iterable[str]) -> str | None:
    """Why a machine wrote this message (so it must never be answered), or None for a person's mail."""
    auto = (header(message, "Auto-Submitted") or "no").strip().lower()
    if auto and not auto.startswith("no"):
        return "auto-submitted"
    if (header(message, "Precedence") or "").strip().lower() in _MACHINE_PRECEDENCE:
        return "bulk or auto-reply precedence"
    if any(header(message, name) is not None for name in _MACHINE_HEADERS):
        return "auto-reply or list header"
    with contextlib.suppress(Exception):
        if message.get_content_type() in _REPORT_TYPES:
            return "delivery or read report"
    envelope = envelope_sender.strip().strip("<>").strip()
    if not envelope:
        return "null envelope sender (a bounce)"
    own_addresses = {normalize_email(a) for a in own if a}
    sender = sender_of(message)
    candidates = {normalize_email(envelope)} | ({sender} if sender else set())
    if candidates & own_addresses:
        return "sent by Lethe's own address"
    if any(_MACHINE_SENDERS.match(address.split("@", 1)[0]) for address in candidates):
        return "sent by a mail system"
    return None


def classify(subject: str, text: str) -> RequestType | None:
    """The one request type the message asks for, or None (nothing, or more than one thing)."""
    own_lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    words = " ".join(f"{subject}\n{chr(10).join(own_lines)}"[:_CLASSIFY_CHARS].lower().split())
    asked = [kind for kind, patterns in _COMPILED.items() if any(p.search(words) for p in patterns)]
    return asked[0] if len(asked) == 1 else None


# ------------------------------------------------------------------ once per message


def _marker(message_id: str) -> ControlRecord:
    settings = get_settings()
    if ControlRecord.Meta.table_name != settings.control_table:
        bind_models(settings)
    return ControlRecord(f"INBOUND#{key_ring().mac('inbound-message', message_id)[:40]}", "outcome")


def _recorded(message_id: str) -> Received | None:
    marker = _marker(message_id)
    found = get_or_none(ControlRecord, marker.pk, marker.sk)
    if found is None:
        return None
    data = found.data or {}
    return Received(**data) if data.get("outcome") else None


def _record(message_id: str, received: Received, now: datetime) -> None:
    marker = _marker(message_id)
    marker.data = received.as_dict()
    marker.at = now.isoformat()
    marker.expires_at = int(now.timestamp()) + get_settings().inbox_retention_days * 86400
    save_if(marker, ControlRecord.pk.does_not_exist())  # recorded already: the first outcome stands


def receive(notice: SesNotice, *, now: datetime | None = None) -> Received:
    """Act on one message SES stored; the same message again gives the first outcome."""
    message_id = notice.mail.message_id
    if not _MESSAGE_ID.fullmatch(message_id):
        logger.warning("inbound message ignored: its id is not one SES gives")
        return Received("ignored", "invalid message id")
    before = _recorded(message_id)
    if before is not None:
        return before
    moment = utc_now(now)
    received = _decide(notice, moment)
    _record(message_id, received, moment)
    logger.info("inbound message", outcome=received.outcome, reason=received.reason)
    return received


def _decide(notice: SesNotice, now: datetime) -> Received:
    if notice.receipt.virus.status.upper() == "FAIL":
        return Received("ignored", "virus verdict FAIL")
    if notice.receipt.spam.status.upper() == "FAIL":
        return Received("ignored", "spam verdict FAIL")
    stored = inbox.read_message(notice.mail.message_id)
    if stored is None:
        # Expired from the bucket (a redelivery a day later), or never stored: nothing to read.
        return Received("ignored", "message no longer stored")
    raw, whole = stored
    message = parse(raw, whole=whole)
    settings = get_settings()
    why = machine_written(
        message, envelope_sender=notice.mail.source, own=(settings.privacy_address, settings.sender_email)
    )
    if why is not None:
        return Received("ignored", why)
    sender = sender_of(message)
    subject = header(message, "Subject") or ""
    text = body_text(message) if whole else ""
    asked = classify(subject, text) if sender and whole else None
    if sender and asked is not None:
        return _request(notice.mail.message_id, sender, asked)
    reason = "no usable sender" if not sender else ("too large to read" if not whole else "not classified")
    return _to_inbox(notice, sender, subject, text, reason, now)


def _request(message_id: str, sender: str, asked: RequestType) -> Received:
    # The key names this message, so a redelivery within the idempotency window is the same request.
    key = key_ring().mac("inbound-submission", message_id)[:48]
    try:
        receipt = intake.submit(intake.Submission(type=asked, email=sender), source_ip=None, client_key=key)
    except RateLimited:
        return Received("rate_limited", "submission limit reached for the sender")
    return Received("request", f"asked for {asked.value}", request_id=receipt.request_id)


def item_id_for(message_id: str, received_at: datetime) -> str:
    return f"{inbox.ITEM_PREFIX}{received_at:%Y%m%dT%H%M%S}_{key_ring().mac('inbox-item', message_id)[:16]}"


def _to_inbox(notice: SesNotice, sender: str | None, subject: str, text: str, reason: str, now: datetime) -> Received:
    received_at = (notice.mail.timestamp or now).astimezone(UTC)
    item = InboxItem(
        item_id=item_id_for(notice.mail.message_id, received_at),
        received_at=received_at,
        sender=sender,
        subject=mail.plain_text(subject, limit=300),
        excerpt=mail.plain_text(text, limit=_EXCERPT_CHARS),
        reason=reason,
    )
    # Composed before the item is stored: an address no message can be built for is refused first.
    ack = _acknowledgement(sender, item.item_id) if sender else None
    if not inbox.add(item):
        return Received("inbox", reason, item_id=item.item_id)
    subject_ref = key_ring().subject_ref(sender) if sender else None
    audit.append(
        "inbox.received", actor="subject", subject_ref=subject_ref, details={"reason": reason, "item": item.item_id}
    )
    if ack is not None and subject_ref is not None:
        try:
            limit = get_settings().codes_per_email_per_hour
            ratelimit.hit("inbox-ack", subject_ref, limit=limit, now=now, token=item.item_id[-16:])
        except RateLimited:
            return Received("inbox", reason + "; acknowledgement limit reached", item_id=item.item_id)
        mail.send(ack)
    return Received("inbox", reason, item_id=item.item_id)


def _acknowledgement(sender: str, item_id: str) -> EmailMessage:
    return mail.compose(
        sender,
        "We received your message",
        (
            "Thank you for writing to our privacy team. We received your message and a member of the team "
            "will read it and answer you.\n\n"
            f"Reference: {item_id}\n\n"
            "To make a request straight away (a copy of your data, a correction, an erasure), use the form at\n"
            f"{get_settings().public_base_url}/\n\n"
            "This is an automatic acknowledgement; please do not reply to it.\n"
        ),
        # RFC 3834: an auto-responder reading this must not answer it.
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )


# ------------------------------------------------------------------ the operator files an item


class FilingBody(Model):
    """What the operator decided an inbox message asks for."""

    model_config = ConfigDict(extra="forbid")

    type: RequestType
    corrections: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=1000)]] | None,
        Field(description="Rectification only: field name -> corrected value", max_length=50),
    ] = None

    @model_validator(mode="after")
    def _corrections_only_for_rectification(self) -> FilingBody:
        if (self.type is RequestType.rectification) != bool(self.corrections):
            raise ValueError("corrections are needed for, and belong only to, rectification")
        return self


def file_item(item_id: str, body: FilingBody, *, actor: str, now: datetime | None = None) -> InboxItem:
    """Make a request of `type` for the item's sender (the code goes to the sender, as from the form)
    and mark the item filed. An item without a sender cannot be filed (answer the sender by hand)."""
    moment = utc_now(now)
    item = inbox.get(item_id)
    if item.status != "open":
        raise InvalidTransition("this inbox item is already filed")
    if not item.sender:
        raise InvalidTransition("this message has no usable sender; it cannot become a request")
    submission = intake.Submission(type=body.type, email=item.sender, corrections=body.corrections)
    key = key_ring().mac("inbox-filing", item_id)[:48]
    receipt = intake.submit(submission, source_ip=None, client_key=key, now=moment)
    filed = inbox.mark_filed(item_id, request_id=receipt.request_id, actor=actor, now=moment)
    audit.append(
        "inbox.filed",
        actor=actor,
        request_id=receipt.request_id,
        subject_ref=key_ring().subject_ref(item.sender),
        details={"item": item_id, "type": body.type.value},
        at=moment,
    )
    return filed

"""Intake: a new data-subject request, its identity verification by a one-time code, cancellation,
and the expiry of requests never verified.

Rules (DESIGN.md, "The flow of one request"):
- Nothing is looked up at intake: the answer never depends on whether the email is known.
- A 6-digit code is emailed; only its HMAC is stored. It expires after `verification_code_ttl_minutes`.
- Each code attempt is counted atomically *before* the comparison, so parallel guesses cannot exceed
  `verification_max_attempts`. After the last wrong attempt an unverified request is closed as
  `expired` with reason "too many attempts" (it was never verified, which is what `expired` means).
- A verified request becomes `pending` (and fulfilment starts) or `awaiting_approval` (NEEDS_APPROVAL).
- A request left unverified for `unverified_expiry_days` becomes `expired` (`expire_unverified`).
- Submission is idempotent: the same body from the same source within IDEMPOTENCY_WINDOW gives the
  same request, while that request is still waiting for its code. Once it is closed (locked out,
  canceled, expired) or verified, the same body is a new request with a new code.
- Limits (per hour) are set so that nobody can lock an address's owner out or flood their mailbox:
  submissions per address *from one source* and per source (someone else's submissions for your
  address, from their source, never count against yours), and codes mailed to an address from all
  sources together (the mailbox's ceiling, reached only from many sources at once). Each counts a
  submission once, however often it is retried.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import re
import secrets
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from pydantic import ConfigDict, Field, model_validator

from lethe.data import audit, idempotency, mail
from lethe.data import requests as repository
from lethe.data.requests import DataSubjectRequest
from lethe.domain import NEEDS_APPROVAL, EmailAddress, Model, Regulation, RequestType, Status, is_plain_address, utc_now
from lethe.errors import (
    ConflictingWrite,
    InvalidCorrection,
    InvalidIdempotencyKey,
    InvalidTransition,
    RequestNotFound,
    RunIncomplete,
    VerificationExpired,
    VerificationFailed,
    VerificationLocked,
)
from lethe.inventory import get_inventory
from lethe.keys import key_ring, normalize_email
from lethe.logic import agents, deadlines, fulfilment, ratelimit
from lethe.logic.agents import Agent
from lethe.logic.requests import transition
from lethe.settings import get_settings

logger = Logger(child=True)

IDEMPOTENCY_WINDOW = timedelta(minutes=10)
# A key the client holds (the form makes one per submission): with it, a retry is recognised by the key,
# and nobody else at the same address, sending the same body without it, is handed that request.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_CLIENT_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
# Module-level so the handler can register the Lambda context (a timed-out in-progress lock then expires).
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[kind, subject_ref, source_ref, client_ref, content, after]",
    expires_after_seconds=int(IDEMPOTENCY_WINDOW.total_seconds()),
    raise_on_no_idempotency_key=True,
)
REQUEST_ID_PREFIX = "req_"
CANCELLABLE = frozenset({Status.identity_unverified, Status.pending, Status.awaiting_approval})
TOO_MANY_ATTEMPTS = "too many attempts"
_MAX_RESUBMISSIONS = 5
NEVER_VERIFIED = "identity not verified in time"


class Submission(Model):
    """A new request as the subject sends it (also the body of POST /requests)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: Annotated[RequestType, Field(description="What the subject asks for")]
    email: Annotated[EmailAddress, Field(description="Where the one-time code and the answer are sent")]
    regulation: Annotated[
        Regulation | None, Field(description="The law the request is made under; omitted means the default")
    ] = None
    name: Annotated[str | None, Field(description="The subject's name, if they wish", max_length=200)] = None
    details: Annotated[str | None, Field(description="Free text: what the request is about", max_length=4000)] = None
    corrections: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=1000)]] | None,
        Field(description="Rectification only: field name -> corrected value", max_length=50),
    ] = None
    agent: Annotated[
        Agent | None,
        Field(
            description=(
                "An authorized agent filing for the subject: the code still goes to the subject's email, the "
                "agent is told the status, and the request waits for an operator to approve the authorization"
            )
        ),
    ] = None

    @model_validator(mode="after")
    def _corrections_only_for_rectification(self) -> Submission:
        if self.type is RequestType.rectification and not self.corrections:
            raise ValueError("a rectification request needs corrections (field -> new value)")
        if self.type is not RequestType.rectification and self.corrections:
            raise ValueError("corrections belong to rectification requests only")
        return self


class Receipt(Model):
    """What a submission answers: never anything that depends on whether the email is known."""

    request_id: str
    status: Status
    due_at: datetime


class RequestStatus(Model):
    """The public status of a request: no email, no name, no result link."""

    model_config = ConfigDict(from_attributes=True)

    request_id: str
    type: RequestType
    status: Status
    regulation: Regulation
    created_at: datetime
    due_at: datetime
    extended: bool


# ------------------------------------------------------------------ corrections (rectification)

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_NAME_MAX, _ADDRESS_MAX = 200, 500


def _no_controls(value: str, *, allow_newlines: bool = False) -> bool:
    return not any(unicodedata.category(char)[0] == "C" and not (allow_newlines and char == "\n") for char in value)


def _is_e164(value: str) -> bool:
    return _E164.fullmatch(value) is not None


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _bounded_text(limit: int, *, allow_newlines: bool = False) -> Callable[[str], bool]:
    return lambda value: 0 < len(value) <= limit and _no_controls(value, allow_newlines=allow_newlines)


# What a corrected value must look like, by the field's category (config/inventory.yaml), first match wins:
# (whether the rule is the category's, what is expected in words, the check).
_CATEGORY_RULES: list[tuple[Callable[[str], bool], str, Callable[[str], bool]]] = [
    (lambda c: c.endswith(".email"), "one plain email address, local@domain", is_plain_address),
    (lambda c: "phone" in c.rsplit(".", 1)[-1], "a phone number in E.164 form, e.g. +447700900123", _is_e164),
    (
        lambda c: c == "user.name" or c.endswith(".name"),
        f"a name of 1 to {_NAME_MAX} characters",
        _bounded_text(_NAME_MAX),
    ),
    (lambda c: "date" in c.rsplit(".", 1)[-1], "a date, YYYY-MM-DD", _is_date),
    (lambda c: c.endswith(".ip_address"), "an IP address", _is_ip),
    (
        lambda c: c.endswith(".address"),
        f"a postal address of 1 to {_ADDRESS_MAX} characters",
        _bounded_text(_ADDRESS_MAX, allow_newlines=True),
    ),
]
_TEXT_MAX = 1000
_TEXT_RULE = (f"text of 1 to {_TEXT_MAX} characters", _bounded_text(_TEXT_MAX))


def _rule(category: str) -> tuple[str, Callable[[str], bool]]:
    return next(((words, check) for matches, words, check in _CATEGORY_RULES if matches(category)), _TEXT_RULE)


def correctable_fields() -> dict[str, str]:
    """What a subject may correct, field -> the form a new value must have (shown by /discovery)."""
    return {
        name: " and ".join(sorted({_rule(category)[0] for category in categories}))
        for name, categories in get_inventory().correctable_fields().items()
    }


def check_corrections(corrections: dict[str, str]) -> None:
    """Refuse a correction of any field the subject may not correct (identifying fields never are) and
    any new value unfit for its field's category. Raises InvalidCorrection, which lists what can be
    corrected; runs before anything is written."""
    correctable = get_inventory().correctable_fields()
    refused = sorted(set(corrections) - set(correctable))
    if refused:
        raise InvalidCorrection(
            f"these fields cannot be corrected: {', '.join(refused)}. "
            f"Fields you can correct: {', '.join(correctable) or 'none'}"
        )
    for name, value in sorted(corrections.items()):
        for category in sorted(correctable[name]):
            words, check = _rule(category)
            if not check(value):
                raise InvalidCorrection(f"corrections.{name}: the new value must be {words}")


def new_request(
    request_id: str,
    request_type: RequestType,
    status: Status,
    regulation: Regulation,
    subject_ref: str,
    now: datetime,
    **fields: Any,
) -> DataSubjectRequest:
    """A request received `now`: due by its regulation's deadline, with `fields` (email, identities, ...)."""
    return DataSubjectRequest(
        request_id=request_id,
        type=request_type,
        status=status,
        regulation=regulation,
        created_at=now,
        due_at=deadlines.due_at(regulation, now),
        updated_at=now,
        subject_ref=subject_ref,
        **fields,
    )


def new_request_id() -> str:
    """Unguessable: 128 random bits."""
    return REQUEST_ID_PREFIX + secrets.token_urlsafe(16)


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(request_id: str, code: str) -> str:
    return key_ring().mac("code", request_id + code)


def submit(
    submission: Submission, *, source_ip: str | None, client_key: str | None = None, now: datetime | None = None
) -> Receipt:
    """Accept a request: rate-limit, store it as identity_unverified, email the code. Idempotent on
    (type, subject, source, client key, content) for IDEMPOTENCY_WINDOW: a retry returns the first receipt."""
    if client_key is not None and not _CLIENT_KEY.fullmatch(client_key):
        raise InvalidIdempotencyKey(f"{IDEMPOTENCY_KEY_HEADER} must be 16 to 64 letters, digits, '-' or '_'")
    if submission.corrections:
        check_corrections(submission.corrections)
    ring = key_ring()
    normalized = submission.model_copy(update={"email": normalize_email(submission.email)})
    content = ring.mac(
        "submission",
        normalized.model_dump_json(include={"regulation", "name", "details", "corrections", "agent"}),
    )
    key = {
        "kind": normalized.type.value,
        "subject_ref": ring.subject_ref(normalized.email),
        "source_ref": ring.hash_ip(source_ip) if source_ip else "",
        "client_ref": ring.mac("submission-client", client_key) if client_key else "",
        "content": content,
    }

    def first_submission(key: dict[str, Any]) -> dict[str, Any]:
        # The same submission retried after a failure is counted once against the rate limits.
        token = ring.mac("submission-key", "|".join(key[k] for k in sorted(key)))[:24]
        return _create(normalized, key["subject_ref"], key["source_ref"], utc_now(now), token=token).model_dump(
            mode="json"
        )

    once = idempotent_function(
        data_keyword_argument="key", config=IDEMPOTENCY, persistence_store=idempotency.persistence_layer()
    )(first_submission)
    for _ in range(_MAX_RESUBMISSIONS):
        try:
            receipt = Receipt.model_validate(once(key=key))
        except IdempotencyAlreadyInProgressError as exc:
            raise ConflictingWrite("the same request is already being submitted; retry in a moment") from exc
        if repository.get(receipt.request_id).status is Status.identity_unverified:
            return receipt
        # The request this body made is closed or verified: resubmitting it is a new request, under a key
        # chained to the old one, so that its own retries are still answered with it.
        key = {**key, "after": receipt.request_id}
    raise ConflictingWrite("this request was closed while it was being submitted again; retry in a moment")


def _create(
    submission: Submission, subject_ref: str, source_ref: str, now: datetime, *, token: str | None = None
) -> Receipt:
    settings = get_settings()
    pair = key_ring().mac("submission-pair", f"{subject_ref}|{source_ref}")
    ratelimit.hit("email-source", pair, limit=settings.submissions_per_email_per_hour, now=now, token=token)
    if source_ref:
        ratelimit.hit("ip", source_ref, limit=settings.submissions_per_ip_per_hour, now=now, token=token)
    ratelimit.hit("email", subject_ref, limit=settings.codes_per_email_per_hour, now=now, token=token)
    if submission.agent is not None:
        # Nobody may flood an address by naming it as an agent: the agent's notices share the codes' ceiling.
        agent_ref = key_ring().subject_ref(normalize_email(submission.agent.email))
        ratelimit.hit("agent", agent_ref, limit=settings.codes_per_email_per_hour, now=now, token=token)
    request_id = new_request_id()
    code = new_code()
    regulation = submission.regulation or Regulation.default
    request = new_request(
        request_id,
        submission.type,
        Status.identity_unverified,
        regulation,
        subject_ref,
        now,
        email=submission.email,
        name=submission.name,
        details=submission.details,
        corrections=submission.corrections,
        code_hash=code_hash(request_id, code),
        code_expires_at=now + timedelta(minutes=settings.verification_code_ttl_minutes),
        agent=submission.agent.model_dump() if submission.agent is not None else None,
    )
    # Everything that can refuse the input runs before the first write: the message is composed (and its
    # recipient checked) before the row exists, so a refused address never leaves a request behind.
    message = _code_message(request, code, settings.verification_code_ttl_minutes)
    stored = repository.create(request)
    audit.append(
        "request.received",
        actor="subject",
        request_id=request_id,
        subject_ref=subject_ref,
        details={"type": request.type.value, "regulation": regulation.value},
        at=now,
    )
    mail.send(message)
    agents.tell_agent(request, Status.identity_unverified)
    logger.info("request received", request_id=request_id, request_type=request.type, regulation=regulation)
    return Receipt(request_id=request_id, status=stored.status, due_at=stored.due_at)


def _code_message(request: DataSubjectRequest, code: str, ttl_minutes: int) -> EmailMessage:
    assert request.email is not None
    return mail.compose(
        request.email,
        "Your privacy request: verification code",
        (
            f"We received {request.type.with_article} request for this address.\n\n"
            f"{agents.filed_by_line(request)}"
            f"Your verification code is {code}\n"
            f"Request id: {request.request_id}\n\n"
            f"The code expires in {ttl_minutes} minutes. Verify with:\n"
            f'POST {get_settings().public_base_url}/requests/{request.request_id}/verify  {{"code": "<code>"}}\n\n'
            "If you did not make this request, ignore this message: nothing happens until the code is used.\n"
        ),
    )


def _check_code(request_id: str, code: str, *, allowed_from: frozenset[Status], now: datetime) -> DataSubjectRequest:
    """Spend one attempt and compare in constant time. Returns the request when the code matches."""
    settings = get_settings()
    current = repository.get(request_id)
    if current.status not in allowed_from:
        if current.status is Status.expired and current.attempts >= settings.verification_max_attempts:
            raise VerificationLocked("too many wrong codes; this request is closed")
        raise InvalidTransition(f"the request is {current.status.value}")
    # Expiry binds the code only while identity is unverified; later the code proves who may cancel.
    verifying = current.status is Status.identity_unverified
    if verifying and current.code_expires_at is not None and now >= current.code_expires_at:
        raise VerificationExpired("the code has expired; submit the request again for a new one")
    # The right code, sent again after a server-side failure, does not use up another attempt (the
    # subject would be locked out by our faults); every wrong guess is counted before its answer.
    digest = code_hash(request_id, code)
    right = bool(current.code_hash) and hmac.compare_digest(digest, current.code_hash or "")
    spent = repository.consume_attempt(
        request_id,
        allowed_from=allowed_from,
        max_attempts=settings.verification_max_attempts,
        tried=digest if right else None,
    )
    if spent is None:
        raise VerificationLocked("too many wrong codes")
    if current.code_hash and hmac.compare_digest(code_hash(request_id, code), current.code_hash):
        return spent
    remaining = settings.verification_max_attempts - spent.attempts
    repository.put_event(request_id, "wrong_code", actor="subject", detail={"attempt": spent.attempts}, now=now)
    logger.info("wrong verification code", request_id=request_id, attempts=spent.attempts)
    if remaining <= 0:
        if verifying:
            _close(request_id, Status.expired, reason=TOO_MANY_ATTEMPTS, now=now)
        raise VerificationLocked(
            "too many wrong codes; this request is closed" if verifying else "too many wrong codes"
        )
    raise VerificationFailed(f"the code is not correct; {remaining} attempt(s) left")


def _from_unverified(request_id: str, to: Status, *, actor: str, reason: str, now: datetime) -> DataSubjectRequest:
    """identity_unverified -> `to`, the reason in the history. InvalidTransition when it has left it."""
    return transition(
        request_id, to, allowed_from={Status.identity_unverified}, actor=actor, detail={"reason": reason}, now=now
    )


def _close(request_id: str, to: Status, *, reason: str, now: datetime) -> None:
    # InvalidTransition: already closed or verified by a concurrent call; nothing left to do.
    with contextlib.suppress(InvalidTransition):
        _from_unverified(request_id, to, actor="system", reason=reason, now=now)


def verify(request_id: str, code: str, *, now: datetime | None = None) -> RequestStatus:
    """Verify the subject's identity with the emailed code.

    identity_unverified -> pending (and fulfilment starts) or awaiting_approval (types in NEEDS_APPROVAL).
    Raises RequestNotFound, VerificationFailed (wrong code, attempts left), VerificationLocked (no attempt
    left; the request is closed), VerificationExpired (code too old) or InvalidTransition (already verified).
    """
    moment = utc_now(now)
    _require_id(request_id)
    current = _check_code(request_id, code, allowed_from=frozenset({Status.identity_unverified}), now=moment)
    duplicate = agents.open_duplicate(current)
    if duplicate is not None:
        return _close_duplicate(current, duplicate, moment)
    # An agent's request waits for the operator to check the authorization before any work starts.
    to = Status.awaiting_approval if current.type in NEEDS_APPROVAL or current.agent else Status.pending
    reason = "identity verified; the agent's authorization awaits approval" if current.agent else "identity verified"
    verified = _from_unverified(request_id, to, actor="subject", reason=reason, now=moment)
    if verified.status is Status.pending:
        fulfilment.start(request_id)
        verified = repository.get(request_id)
    return public_status(verified)


def _close_duplicate(request: DataSubjectRequest, open_request: DataSubjectRequest, now: datetime) -> RequestStatus:
    """A verified request that repeats an open one is closed, and the subject told which one is open."""
    notice = agents.duplicate_notice(request, open_request)
    closed = transition(
        request.request_id,
        Status.canceled,
        allowed_from={Status.identity_unverified},
        actor="system",
        detail={"reason": agents.DUPLICATE_REASON, "duplicate_of": open_request.request_id},
        now=now,
    )
    if notice is not None:
        mail.send(notice)
    return public_status(closed)


def cancel(request_id: str, code: str, *, now: datetime | None = None) -> RequestStatus:
    """Cancel a request not yet in progress (identity_unverified, pending, awaiting_approval).
    It needs the emailed code; wrong codes count against the same attempts as verification."""
    moment = utc_now(now)
    _require_id(request_id)
    _check_code(request_id, code, allowed_from=CANCELLABLE, now=moment)
    canceled = transition(
        request_id,
        Status.canceled,
        allowed_from=CANCELLABLE,
        actor="subject",
        detail={"reason": "canceled by the subject"},
        now=moment,
    )
    return public_status(canceled)


def status(request_id: str) -> RequestStatus:
    """The public status of a request. Raises RequestNotFound."""
    _require_id(request_id)
    return public_status(repository.get(request_id))


def public_status(request: DataSubjectRequest) -> RequestStatus:
    return RequestStatus.model_validate(request, from_attributes=True)


def _require_id(request_id: str) -> None:
    """Ids that could never have been issued are unknown, like any other unknown id (404, not 422)."""
    if not request_id.startswith(REQUEST_ID_PREFIX) or not 8 <= len(request_id) <= 64:
        raise RequestNotFound("no such request")


def expire_unverified(now: datetime | None = None, *, batch: int = 100) -> int:
    """Close every request left identity_unverified for `unverified_expiry_days` as `expired`.
    Queries the by_status_due index (never a Scan): a request created before the cutoff is due
    before the cutoff plus the longest deadline, so the range key bounds the Query. Returns the count."""
    moment = utc_now(now)
    cutoff = moment - timedelta(days=get_settings().unverified_expiry_days)
    due_bound = max(deadlines.due_at(regulation, cutoff) for regulation in Regulation)
    expired, failed, cursor = 0, 0, None
    while True:
        page, cursor = repository.query_by_status(
            Status.identity_unverified, due_before=due_bound, created_before=cutoff, limit=batch, cursor=cursor
        )
        for request in page:
            try:
                _from_unverified(request.request_id, Status.expired, actor="system", reason=NEVER_VERIFIED, now=moment)
                expired += 1
            except (InvalidTransition, RequestNotFound):
                continue
            except Exception:  # one request's failure must not keep the others open
                logger.exception(
                    "unverified request not expired; the next run tries again", request_id=request.request_id
                )
                failed += 1
        if cursor is None:
            break
    if failed:
        raise RunIncomplete(f"{failed} unverified requests not expired ({expired} were); the next run tries again")
    return expired

"""Authorized agents and duplicate requests (DESIGN.md, "Agents and duplicates").

An authorized agent (CCPA Civil Code § 1798.135, regulations § 7063) files a request for a person:
- the verification code still goes to the person's own address, so nobody acts for someone who does
  not confirm;
- the agent is told the status (filed, waiting for the operator, started, finished, closed), by
  reference only: the answer itself (an export link, a certificate) goes to the person alone;
- a verified request filed by an agent waits in awaiting_approval until an operator has checked the
  agent's signed authorization (`lethe requests approve`).

A verified request of the same type for a subject who already has one open is closed as a duplicate
(canceled, with the reason) and the subject is told the open one's reference, so nothing runs twice.
"""

from __future__ import annotations

import unicodedata
from email.message import EmailMessage
from typing import Annotated

from aws_lambda_powertools import Logger
from pydantic import ConfigDict, Field, field_validator

from lethe.data import mail
from lethe.data import requests as repository
from lethe.data.requests import DataSubjectRequest
from lethe.domain import EmailAddress, Model, Status

logger = Logger(child=True)

# What a status means to the agent, in words. Statuses not named here are not worth a message.
_AGENT_WORDS = {
    Status.identity_unverified: "filed: we emailed the person a code, and nothing happens until they confirm it",
    Status.awaiting_approval: "confirmed by the person; our privacy team is reviewing your authorization",
    Status.in_progress: "approved and in progress",
    Status.completed: "completed; the answer was sent to the person directly",
    Status.denied: "denied",
    Status.canceled: "canceled",
    Status.expired: "closed, as the person did not confirm it in time",
}
# A request that is still being worked on, for the duplicate check.
OPEN = frozenset({Status.pending, Status.awaiting_approval, Status.in_progress, Status.failed})
DUPLICATE_REASON = "duplicate of an open request"


class Agent(Model):
    """An authorized agent: who acts for the subject, and where the agent is told the status."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200, description="The agent's name or business")]
    email: Annotated[EmailAddress, Field(description="Where the agent is told the request's status")]

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(unicodedata.category(char)[0] == "C" for char in value):
            raise ValueError("the name must not hold control characters")
        return value


def status_notice(request: DataSubjectRequest, to: Status) -> EmailMessage | None:
    """The message telling the request's agent that it is now `to`; None without an agent or news."""
    agent = request.agent or {}
    words = _AGENT_WORDS.get(to)
    if not agent.get("email") or words is None:
        return None
    reason = ""
    if to is Status.denied and request.denial_reason:
        reason = f"\nThe reason given: {mail.plain_text(request.denial_reason)}\n"
    return mail.compose(
        agent["email"],
        "A privacy request you filed: status",
        (
            f"Hello {mail.plain_text(agent.get('name') or '', limit=200)},\n\n"
            f"The {request.type.value.replace('_', ' ')} request you filed on behalf of a person "
            f"(reference {request.request_id}) is now {words}.\n{reason}\n"
            "You are told because you filed it as their authorized agent.\n"
        ),
        headers={"Auto-Submitted": "auto-generated"},
    )


def tell_agent(request: DataSubjectRequest, to: Status) -> None:
    """Best effort: the status change has happened; a notice that cannot be sent is logged, not raised,
    so the caller's change is never reported as failed."""
    try:
        notice = status_notice(request, to)
        if notice is not None:
            mail.send(notice)
    except Exception as exc:  # the request moved on; the agent learns at the next change or by asking
        # Only the error's type: an SES message may quote the address.
        logger.warning(
            "agent status notice not sent", request_id=request.request_id, to_status=to, error=type(exc).__name__
        )


def open_duplicate(request: DataSubjectRequest) -> DataSubjectRequest | None:
    """Another open request of the same type for the same subject (one Query of the by_subject index)."""
    for request_id in repository.request_ids_of_subject([request.subject_ref]):
        if request_id == request.request_id:
            continue
        other = repository.get(request_id)
        if other.type is request.type and other.status in OPEN:
            return other
    return None


def filed_by_line(request: DataSubjectRequest) -> str:
    """For the subject's code email: who filed the request for them, so they confirm only if they asked."""
    agent = request.agent or {}
    if not agent.get("email"):
        return ""
    return (
        f"It was filed on your behalf by {mail.plain_text(agent.get('name') or '', limit=200)} "
        f"<{agent['email']}>, as your authorized agent. Confirm it only if you asked them to act for you.\n\n"
    )


def duplicate_notice(request: DataSubjectRequest, open_request: DataSubjectRequest) -> EmailMessage | None:
    if not request.email:
        return None
    return mail.compose(
        request.email,
        "Your privacy request: already in hand",
        (
            f"Thank you for confirming your {request.type.value.replace('_', ' ')} request "
            f"(reference {request.request_id}).\n\n"
            f"You already have the same request open with us: reference {open_request.request_id}. "
            "We are working on that one, so this new one is closed and nothing is done twice. "
            "You will hear from us about the open request.\n"
        ),
    )

"""Policy versions: publishing one, and noticing subscribers of policy_updates.

Publishing stores the version (ControlTable pk POLICY, sk <version>; a second publish of the same
version is refused) and fans out one SQS message per batch of subscribers. The notification function
emails each subscriber once per version: the send is idempotent on (version, recipient reference),
so a redelivered message, or two linked subjects sharing one address, never send twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import Field, model_validator

from lethe.data import audit, queues
from lethe.data import consents as ledger
from lethe.data.models import ControlRecord
from lethe.data.writes import get_or_none, save_if
from lethe.domain import Model
from lethe.errors import ConfigurationError, PolicyVersionExists
from lethe.logic.suppression import is_suppressed
from lethe.settings import get_settings

POLICY_PK = "POLICY"
POLICY_UPDATES: Final = "policy_updates"
NOTICE_BATCH_SIZE = 50
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class PolicyVersion(Model):
    version: str
    summary: str
    published_at: datetime


class PublishResult(Model):
    version: Annotated[str, Field(description="The version now in force")]
    published_at: datetime
    subscribers: Annotated[int, Field(description="Reachable, unsuppressed subscribers of policy_updates")]
    batches: Annotated[int, Field(description="Notification messages queued")]


class PolicyNotice(Model):
    """The body of one NotificationQueue message: a batch of subscriber ids, never addresses."""

    kind: Literal["policy_notice"] = "policy_notice"
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    summary: str = ""
    subscribers: list[str] = Field(default_factory=list, max_length=NOTICE_BATCH_SIZE)

    @model_validator(mode="before")
    @classmethod
    def _single_subscriber(cls, data: Any) -> Any:
        # A message may also name one subscriber (as the sample event does).
        if isinstance(data, dict) and "subscriber" in data and "subscribers" not in data:
            data = {**data, "subscribers": [data["subscriber"]]}
        return data


class NoticeBatchResult(Model):
    version: str
    notified: int = 0
    unreachable: int = 0
    suppressed: int = 0


class NoticeSender(Protocol):
    """Sends one notice; the real one is idempotent on notice_key (functions/notification/app.py)."""

    def __call__(self, *, notice_key: dict[str, str], email: str, version: str, summary: str) -> Any: ...


def published() -> list[PolicyVersion]:
    rows = ControlRecord.query(POLICY_PK, consistent_read=True)
    versions = [
        PolicyVersion(
            version=row.sk, summary=(row.data or {}).get("summary", ""), published_at=datetime.fromisoformat(row.at)
        )
        for row in rows
        if row.at
    ]
    return sorted(versions, key=lambda v: v.published_at)


def latest() -> PolicyVersion | None:
    """The version published last (by publication time, not by the shape of its name)."""
    versions = published()
    return versions[-1] if versions else None


def _subscribers() -> Iterator[str]:
    """Reachable, unsuppressed subscribers of policy_updates, found by Query on the sparse index."""
    for state in ledger.granted_to(POLICY_UPDATES):
        if state.contact and not is_suppressed(state.contact):
            yield state.subject_id


def _queue(messages: list[PolicyNotice]) -> None:
    url = get_settings().notification_queue_url
    if not url:
        raise ConfigurationError("the notification queue is not configured")
    refused = queues.send_all(url, [m.model_dump_json() for m in messages])
    if refused:
        raise ConfigurationError(f"{refused} notification messages were refused by the queue")


def _store(version: str, summary: str, at: datetime) -> tuple[str, datetime]:
    """Store a new version; the summary and time in force if an earlier publish of it never finished
    queueing its notices (so that publish can be completed). PolicyVersionExists otherwise."""
    record = ControlRecord(POLICY_PK, version, at=at.isoformat(), data={"summary": summary, "notices_queued": False})
    if save_if(record, ControlRecord.sk.does_not_exist()):
        return summary, at
    existing = get_or_none(ControlRecord, POLICY_PK, version)
    data = (existing.data if existing else None) or {}
    if existing is None or data.get("notices_queued", True) or data.get("summary") != summary or not existing.at:
        raise PolicyVersionExists(f"policy version {version} was already published")
    return summary, datetime.fromisoformat(existing.at)


def publish(version: str, summary: str, *, actor: str = "operator", now: datetime | None = None) -> PublishResult:
    """Publish a version and queue its notices. A version is published once (409 on a second try),
    except that an identical publish whose fan-out failed half-way completes it: notices are
    idempotent per recipient, so queueing a batch again never sends an email twice."""
    summary, at = _store(version, summary, now or datetime.now(UTC))
    subscribers = list(dict.fromkeys(_subscribers()))
    batches = [
        PolicyNotice(version=version, summary=summary, subscribers=subscribers[i : i + NOTICE_BATCH_SIZE])
        for i in range(0, len(subscribers), NOTICE_BATCH_SIZE)
    ]
    _queue(batches)
    ControlRecord(POLICY_PK, version).update(
        actions=[ControlRecord.data.set({"summary": summary, "notices_queued": True})]
    )
    audit.append(
        "policy_version_published",
        actor=actor,
        details={"version": version, "subscribers": len(subscribers), "batches": len(batches)},
        at=at,
    )
    return PublishResult(version=version, published_at=at, subscribers=len(subscribers), batches=len(batches))


def deliver_notices(notice: PolicyNotice, send: NoticeSender) -> NoticeBatchResult:
    """Email each subscriber of one batch who is still subscribed, reachable and not suppressed."""
    result = NoticeBatchResult(version=notice.version)
    for subject_id in dict.fromkeys(notice.subscribers):
        state = ledger.current_row(subject_id, POLICY_UPDATES)
        if state is None or not state.granted or not state.contact or not state.contact_ref:
            result.unreachable += 1
            continue
        if is_suppressed(state.contact):
            result.suppressed += 1
            continue
        send(
            notice_key={"version": notice.version, "recipient_ref": state.contact_ref},
            email=state.contact,
            version=notice.version,
            summary=notice.summary,
        )
        result.notified += 1
    audit.append("policy_notice_batch", details=result.model_dump())
    return result


def notice_email(version: str, summary: str, email: str) -> tuple[str, str, dict[str, str]]:
    """Subject, text and headers of a policy-change notice to one subscriber. It carries that
    subscriber's one-click unsubscribe link (RFC 8058 headers too); "your choices" opens the same
    link's page, which a person can follow with a GET."""
    from lethe.logic.unsubscribe import unsubscribe_link  # it imports the ledger, which imports this module

    link = unsubscribe_link(email, POLICY_UPDATES)
    text = (
        f"We have published a new version of our privacy policy ({version}).\n\n"
        f"{summary}\n\n"
        "You receive this notice because you asked to be told about policy changes.\n"
        f"Your choices, or to stop these notices: {link.url}\n"
    )
    return f"Our privacy policy has changed ({version})", text, link.headers


def parse_notice(body: str) -> PolicyNotice:
    return PolicyNotice.model_validate(json.loads(body))

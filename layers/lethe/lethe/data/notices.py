"""Recipient notices (RecipientNoticeRecord rows): the write that records a notice sent, and the
recipients' webhook signing keys, read from Secrets Manager by reference."""

from __future__ import annotations

from lethe.aws import client, retry_transient
from lethe.data.models import RecipientNoticeRecord
from lethe.settings import get_settings


def record_sent(row: RecipientNoticeRecord, *, told_at: str) -> None:
    """Mark the notice sent, retried in place on a transient error: a notice that went but is not
    recorded as sent would go again on redelivery."""
    retry_transient(_record_sent, row, told_at, what="record a notice sent")


def _record_sent(row: RecipientNoticeRecord, told_at: str) -> None:
    row.update(
        actions=[
            RecipientNoticeRecord.state.set("sent"),
            RecipientNoticeRecord.told_at.set(told_at),
            RecipientNoticeRecord.attempts.add(1),
            RecipientNoticeRecord.last_error.remove(),
            RecipientNoticeRecord.status.remove(),
            RecipientNoticeRecord.due_at.remove(),
        ]
    )


def webhook_secret_string(reference: str) -> str:
    """The secret string stored under the inventory's `reference` (settings.secret_id names it)."""
    return str(client("secretsmanager").get_secret_value(SecretId=get_settings().secret_id(reference))["SecretString"])

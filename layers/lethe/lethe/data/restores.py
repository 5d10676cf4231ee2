"""Tables restored from a backup, as the replay sees them: their key schema and status (one
DescribeTable each), and the replay's own queue."""

from __future__ import annotations

from lethe.aws import client
from lethe.settings import get_settings


def key_schema(table: str) -> tuple[str | None, str | None] | None:
    """(hash, range) attribute names of a table, or None when it does not exist (or Lethe may not read it)."""
    ddb = client("dynamodb")
    try:
        described = ddb.describe_table(TableName=table)["Table"]
    except ddb.exceptions.ResourceNotFoundException:
        return None
    parts = {entry["KeyType"]: entry["AttributeName"] for entry in described["KeySchema"]}
    return parts.get("HASH"), parts.get("RANGE")


def table_status(table: str) -> str | None:
    """The table's status (ACTIVE once a restore is done), or None when it does not exist (yet)."""
    ddb = client("dynamodb")
    try:
        return str(ddb.describe_table(TableName=table)["Table"].get("TableStatus", "ACTIVE"))
    except ddb.exceptions.ResourceNotFoundException:
        return None


def queue_replay_task(body: str, *, delay_seconds: int = 0) -> None:
    """One replay task onto the ReplayQueue."""
    client("sqs").send_message(QueueUrl=get_settings().replay_queue_url, MessageBody=body, DelaySeconds=delay_seconds)

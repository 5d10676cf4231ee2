"""Lethe's own queues (SQS): the messages it sends itself (work, notices, callbacks), and the dead
letters an operator looks at and sends back. Bodies are Lethe's JSON, never a subject's address."""

from __future__ import annotations

from typing import Any

from lethe.aws import client

BATCH_LIMIT = 10  # SQS takes at most ten entries per SendMessageBatch


def send(queue_url: str, body: str, *, delay_seconds: int | None = None) -> None:
    """Queue one message (held back `delay_seconds` before it can be received, when given)."""
    request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
    if delay_seconds is not None:
        request["DelaySeconds"] = delay_seconds
    client("sqs").send_message(**request)


def send_all(queue_url: str, bodies: list[str]) -> int:
    """Queue `bodies` in batches of ten, in order, stopping after the first batch the queue refused any
    of. Returns how many of that batch were refused: 0 when every message was taken."""
    sqs = client("sqs")
    for start in range(0, len(bodies), BATCH_LIMIT):
        chunk = bodies[start : start + BATCH_LIMIT]
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        if failed:
            return len(failed)
    return 0


def peek(queue_url: str, *, limit: int = 10) -> list[dict[str, Any]]:
    """Up to `limit` (at most ten) messages with their attributes, left where they are (visibility 0)."""
    answer = client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=limit, VisibilityTimeout=0, AttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


def move(source_url: str, target_url: str, *, limit: int) -> int:
    """Move up to `limit` messages from `source_url` to `target_url`: each is sent to the target before
    it is deleted from the source, so none is lost (one may arrive twice). Returns the count moved."""
    sqs = client("sqs")
    moved = 0
    while moved < limit:
        messages = sqs.receive_message(
            QueueUrl=source_url, MaxNumberOfMessages=min(10, limit - moved), VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            sqs.send_message(QueueUrl=target_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def hold_back(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Keep a received message out of sight for `seconds` before its next receive (a retry's backoff)."""
    client("sqs").change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)

"""Drives Lethe as its callers and AWS would, while faults are injected: a client that retries a 5xx,
and queue pollers that redeliver what a worker reported failed, as Lambda's event source mapping does
(failed records stay on the queue; after maxReceiveCount they move to the dead-letter queue)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Invoke = Callable[..., Any]


@dataclass
class Tally:
    """What happened on the way: retries by the client, redeliveries, dead letters, operator retries."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n


def api(
    invoke: Invoke,
    function: str,
    method: str,
    path: str,
    *,
    resource: str,
    tally: Tally,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "198.51.100.7",
    attempts: int = 200,
) -> tuple[int, Any, int]:
    """One API call through the real handler, retried while it answers 5xx (a person pressing the
    button again, the form retrying). Returns the final status, body, and how many 5xx came first."""
    from lethe_local.events import api_event

    server_errors, last = 0, None
    for _ in range(attempts):
        event = api_event(
            method,
            path,
            resource=resource,
            path_parameters=path_parameters,
            headers={"Content-Type": "application/json", **(headers or {})},
            body=None if body is None else json.dumps(body),
            source_ip=source_ip,
        )
        try:
            result = invoke(function, event)
        except Exception as exc:  # an unhandled error is what API Gateway turns into a 502
            result, last = {"statusCode": 502, "body": "{}"}, exc
        status = result["statusCode"]
        answer = json.loads(result.get("body") or "null")
        if status == 409 and server_errors and (answer or {}).get("error", {}).get("code") == "conflicting_write":
            # "retry in a moment": the lock of the failed attempt expires with that invocation's timeout
            tally.add("client retries after 409 conflicting_write")
            time.sleep(0.03)
            continue
        if status < 500:
            return status, answer, server_errors
        server_errors += 1
        tally.add("client retries after 5xx")
    raise AssertionError(f"{method} {path} kept answering 5xx: {last!r} {result}")


def queue_arn(url: str) -> str:
    from lethe.aws import client

    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def poll(
    invoke: Invoke,
    function: str,
    url: str,
    *,
    tally: Tally,
    label: str,
    rounds: int = 100_000,
) -> int:
    """Feed a queue to its function until it is empty, as an event source mapping would: delete the
    records the function did not report as failed; make the failed ones visible again at once (the
    visibility timeout, shortened), so they are redelivered, or moved to the DLQ past maxReceiveCount.
    Returns the number of batches delivered."""
    from lethe.aws import client
    from lethe_local.events import sqs_event

    sqs = client("sqs")
    arn = queue_arn(url)
    for batches in range(rounds):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            return batches
        try:
            result = invoke(function, sqs_event(messages, arn))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception:  # the whole batch failed: every record is redelivered
            failed = {m["MessageId"] for m in messages}
            tally.add(f"{label}: whole batches failed")
        for message in messages:
            if int(message["Attributes"].get("ApproximateReceiveCount", "1")) > 1:
                tally.add(f"{label}: redeliveries")
            if message["MessageId"] in failed:
                tally.add(f"{label}: records failed")
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"{label}: the queue did not drain")

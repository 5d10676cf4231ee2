"""The local event source mapping: partial batch failures, whole-batch failures, parking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lethe_local.poller import PARK_AFTER_RECEIVES, RETRY_VISIBILITY_SECONDS, QueuePoller, Source

ARN = "arn:aws:sqs:us-east-1:123456789012:UnitQueue"


class FakeSqs:
    """The four SQS calls the poller makes, over an in-memory list of messages."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.deleted: list[str] = []
        self.retried: list[tuple[str, int]] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        batch, self.messages = (
            self.messages[: kwargs["MaxNumberOfMessages"]],
            self.messages[kwargs["MaxNumberOfMessages"] :],
        )
        return {"Messages": batch}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.retried.append((ReceiptHandle, VisibilityTimeout))


def message(n: int, receives: int = 1) -> dict[str, Any]:
    return {
        "MessageId": f"m-{n}",
        "ReceiptHandle": f"rh-{n}",
        "Body": json.dumps({"n": n}),
        "Attributes": {"ApproximateReceiveCount": str(receives)},
    }


def source(*, dlq: bool = True) -> Source:
    return Source("UnitFunction", "UnitQueue", "http://sqs.local/UnitQueue", ARN, 10, has_dead_letter_queue=dlq)


def test_listed_failures_are_retried_and_the_rest_deleted(tmp_path: Path) -> None:
    # Given a batch of three where the function reports m-2 as failed
    sqs = FakeSqs([message(1), message(2), message(3)])
    seen: list[dict[str, Any]] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"batchItemFailures": [{"itemIdentifier": "m-2"}]}

    poller = QueuePoller(sqs, [source()], invoke, parked=tmp_path)

    # When
    busy = poller.poll_once(source())

    # Then
    assert busy is True
    assert [r["messageId"] for r in seen[0]["Records"]] == ["m-1", "m-2", "m-3"]
    assert seen[0]["Records"][0]["eventSourceARN"] == ARN
    assert sorted(sqs.deleted) == ["rh-1", "rh-3"]
    assert sqs.retried == [("rh-2", RETRY_VISIBILITY_SECONDS)]


def test_an_exception_fails_the_whole_batch(tmp_path: Path) -> None:
    sqs = FakeSqs([message(1), message(2)])

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("unit failure")

    QueuePoller(sqs, [source()], invoke, parked=tmp_path).poll_once(source())

    assert sqs.deleted == []
    assert sorted(h for h, _ in sqs.retried) == ["rh-1", "rh-2"]


def test_an_empty_queue_is_not_busy(tmp_path: Path) -> None:
    calls: list[str] = []
    poller = QueuePoller(FakeSqs([]), [source()], lambda f, e: calls.append(f), parked=tmp_path)

    assert poller.poll_once(source()) is False
    assert calls == []


def test_a_message_failing_too_often_on_a_queue_without_dlq_is_parked(tmp_path: Path) -> None:
    # Given a dead-letter queue's consumer that keeps failing one message
    sqs = FakeSqs([message(7, receives=PARK_AFTER_RECEIVES), message(8, receives=1)])

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": "m-7"}, {"itemIdentifier": "m-8"}]}

    # When
    QueuePoller(sqs, [source(dlq=False)], invoke, parked=tmp_path).poll_once(source(dlq=False))

    # Then the exhausted one is saved and deleted; the other is retried
    saved = json.loads((tmp_path / "UnitQueue-m-7.json").read_text())
    assert saved["Body"] == json.dumps({"n": 7})
    assert sqs.deleted == ["rh-7"]
    assert sqs.retried == [("rh-8", RETRY_VISIBILITY_SECONDS)]


def test_a_queue_with_a_dlq_never_parks(tmp_path: Path) -> None:
    sqs = FakeSqs([message(9, receives=PARK_AFTER_RECEIVES + 3)])

    QueuePoller(
        sqs, [source()], lambda f, e: {"batchItemFailures": [{"itemIdentifier": "m-9"}]}, parked=tmp_path
    ).poll_once(source())

    assert sqs.deleted == []
    assert not list(tmp_path.iterdir())

"""The local event source mapping: partial batch failures, whole-batch failures, parking, and the
idle back-off with its wake-up."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lethe_local import poller as poller_module
from lethe_local.poller import (
    IDLE_MAX_SECONDS,
    IDLE_SECONDS,
    PARK_AFTER_RECEIVES,
    RETRY_MARGIN_SECONDS,
    RETRY_VISIBILITY_SECONDS,
    WAKE_MIN_SECONDS,
    Backoff,
    PollingThread,
    QueuePoller,
    Source,
    Wakeup,
)

ARN = "arn:aws:sqs:us-east-1:123456789012:UnitQueue"


class FakeSqs:
    """The four SQS calls the poller makes, over an in-memory list of messages."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.deleted: list[str] = []
        self.retried: list[tuple[str, int]] = []
        self.receives = 0

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.receives += 1
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


class ScriptedWakeup(Wakeup):
    """Records each wait's timeout instead of waiting; `script[n]` runs at the n-th wait (from 1) and
    says whether it was woken. The poller is stopped at the `stop_at`-th wait."""

    def __init__(self, stop_at: int, script: dict[int, Callable[[], bool]] | None = None) -> None:
        super().__init__()
        self.stop_at, self.script = stop_at, script or {}
        self.waits: list[float] = []
        self.poller: PollingThread | None = None

    def wait(self, seen: int, timeout: float) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.stop_at and self.poller is not None:
            self.poller._stop_event.set()
        return self.script.get(len(self.waits), lambda: False)()


def run_scripted(sqs: FakeSqs, wakeup: ScriptedWakeup, tmp_path: Path) -> list[str]:
    invoked: list[str] = []
    poller = QueuePoller(sqs, [source()], lambda f, e: invoked.append(f), parked=tmp_path, wakeup=wakeup)
    wakeup.poller = poller
    poller.run()
    return invoked


def test_the_backoff_doubles_to_its_cap_and_starts_over_on_reset() -> None:
    backoff = Backoff(first=0.2, cap=2.0)

    waits = [backoff.next() for _ in range(6)]
    backoff.reset()

    assert waits == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert backoff.next() == 0.2


def test_an_idle_poller_waits_longer_after_each_empty_round(tmp_path: Path) -> None:
    # Given nothing on the queue
    sqs, wakeup = FakeSqs([]), ScriptedWakeup(stop_at=6)

    # When the poller runs six empty rounds
    run_scripted(sqs, wakeup, tmp_path)

    # Then it waited from IDLE_SECONDS, doubling, up to IDLE_MAX_SECONDS, one receive per round
    assert wakeup.waits == [IDLE_SECONDS, 2 * IDLE_SECONDS, 4 * IDLE_SECONDS, 8 * IDLE_SECONDS] + 2 * [IDLE_MAX_SECONDS]
    assert sqs.receives == 6


def test_a_round_that_finds_work_polls_again_at_once_and_starts_the_backoff_over(tmp_path: Path) -> None:
    # Given a message that arrives during the third wait
    sqs = FakeSqs([])

    def arrive() -> bool:
        sqs.messages.append(message(1))
        return False  # the wait ran its full time: nobody woke the poller

    wakeup = ScriptedWakeup(stop_at=5, script={3: arrive})

    # When the poller runs
    invoked = run_scripted(sqs, wakeup, tmp_path)

    # Then the busy round was followed by another without a wait, and the waits start over after it
    assert invoked == ["UnitFunction"]
    assert wakeup.waits == [IDLE_SECONDS, 2 * IDLE_SECONDS, 4 * IDLE_SECONDS, IDLE_SECONDS, 2 * IDLE_SECONDS]
    assert sqs.receives == 3 + 1 + 2  # three empty rounds, the busy one, the two empty ones after it


def test_a_wakeup_ends_the_wait_and_starts_the_backoff_over(tmp_path: Path) -> None:
    # Given a function run (the wake-up) during the fourth wait
    wakeup = ScriptedWakeup(stop_at=6, script={4: lambda: True})

    # When the poller runs
    run_scripted(FakeSqs([]), wakeup, tmp_path)

    # Then the wait after it is the shortest again
    assert wakeup.waits == [
        IDLE_SECONDS,
        2 * IDLE_SECONDS,
        4 * IDLE_SECONDS,
        8 * IDLE_SECONDS,
        IDLE_SECONDS,
        2 * IDLE_SECONDS,
    ]


def test_a_burst_of_wakeups_shares_rounds_begun_at_least_wake_min_seconds_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a clock that stands still, and a function run before each of four waits (a burst)
    monkeypatch.setattr(poller_module.time, "monotonic", lambda: 100.0)
    wakeup = ScriptedWakeup(stop_at=4, script=dict.fromkeys(range(1, 5), lambda: True))
    sqs = FakeSqs([])
    poller = QueuePoller(sqs, [source()], lambda f, e: None, parked=tmp_path, wakeup=wakeup)
    wakeup.poller = poller
    held: list[float | None] = []

    class Recording(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            held.append(timeout)
            return self.is_set()

    poller._stop_event = Recording()

    # When the poller runs
    poller.run()

    # Then each woken round first waited out WAKE_MIN_SECONDS from the start of the round before
    assert held == pytest.approx([WAKE_MIN_SECONDS] * 4)
    assert sqs.receives == 4


def test_a_wakeup_set_during_a_round_is_seen_by_the_wait_after_it() -> None:
    # Given a wake-up shared by two pollers, each remembering the generation its round began at
    wakeup = Wakeup()
    first, second = wakeup.generation, wakeup.generation

    # When a function runs
    wakeup.set()

    # Then both would stop waiting at once (neither clears it for the other), and a new round would wait
    assert wakeup.wait(first, 0) is True
    assert wakeup.wait(second, 0) is True
    assert wakeup.wait(wakeup.generation, 0) is False


def test_stop_wakes_a_waiting_poller(tmp_path: Path) -> None:
    poller = QueuePoller(FakeSqs([]), [source()], lambda f, e: None, parked=tmp_path)
    seen = poller.wakeup.generation

    poller.stop()

    assert poller.wakeup.wait(seen, 0) is True


def test_a_wait_ends_when_a_message_handed_back_is_visible_again(tmp_path: Path) -> None:
    # Given a batch whose one message the function failed, at t=100 on the poller's clock
    sqs = FakeSqs([message(1)])
    poller = QueuePoller(sqs, [source()], lambda f, e: {"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    poller.parked, now = tmp_path, [100.0]
    poller.clock = lambda: now[0]
    poller.poll_once(source())

    # When the empty rounds after it wait, each as long as it is told
    waits = []
    for _ in range(5):
        waits.append(poller.next_wait())
        now[0] += waits[-1]

    # Then the back-off is cut short to end when the retry is due, and goes on after it
    due = RETRY_VISIBILITY_SECONDS + RETRY_MARGIN_SECONDS - 3 * IDLE_SECONDS
    assert waits == [IDLE_SECONDS, 2 * IDLE_SECONDS, pytest.approx(due), 8 * IDLE_SECONDS, IDLE_MAX_SECONDS]

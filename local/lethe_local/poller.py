"""The local event source mapping: polls each SQS queue a function listens to and invokes it.

As Lambda does with ReportBatchItemFailures: the messages not listed in `batchItemFailures` are
deleted; the listed ones become visible again (after a short timeout here, for speed) and the
queue's RedrivePolicy moves them to the dead-letter queue after maxReceiveCount receives. A handler
that raises fails the whole batch.

A queue without a RedrivePolicy (a dead-letter queue's consumer) has nowhere to send a message that
keeps failing: AWS would retry it until its retention ends, which locally would keep every later
"wait until drained" waiting. After PARK_AFTER_RECEIVES failures such a message is parked instead:
saved under <local dir>/parked/ and deleted, with a line on the console.

An idle stack polls slowly: after a round that found nothing the poller waits IDLE_SECONDS, doubling
after each further empty round up to IDLE_MAX_SECONDS; a round that found work polls again at once.
A function's send to SQS sets the poller's `Wakeup` (lethe_local.writes), which ends the wait and
starts over from IDLE_SECONDS, so a message a function just sent is received at once (a round woken
so starts no sooner than WAKE_MIN_SECONDS after the one before began, so a burst of sends shares one
round instead of one each); a wait is also cut short to poll when a message handed back for a retry
becomes visible again. Work put on a queue from outside the process (a test or script sending to moto
directly) may wait up to IDLE_MAX_SECONDS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lethe_local.events import sqs_event

RETRY_VISIBILITY_SECONDS = 1
IDLE_SECONDS = 0.2  # the wait after the first empty round
IDLE_MAX_SECONDS = 2.0  # the longest wait, once nothing has been found for a while
RETRY_MARGIN_SECONDS = 0.05  # after RETRY_VISIBILITY_SECONDS, so the retried message is visible
PARK_AFTER_RECEIVES = 5
WAKE_MIN_SECONDS = 0.1  # the least time from one round's start to the next one a wakeup starts


@dataclass(frozen=True)
class Source:
    """One SQS event source of one function."""

    function: str
    queue: str
    url: str
    arn: str
    batch_size: int = 10
    has_dead_letter_queue: bool = True


def batch_sizes(template: dict[str, Any]) -> dict[tuple[str, str], int]:
    """(function logical id, queue logical id) -> BatchSize, as declared in template.yaml."""
    sizes: dict[tuple[str, str], int] = {}
    for logical_id, resource in template["Resources"].items():
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            props = event.get("Properties", {})
            queue = props.get("Queue")
            name = queue["Fn::GetAtt"][0] if isinstance(queue, dict) else str(queue)
            sizes[(logical_id, name)] = max(1, min(10, int(props.get("BatchSize", 10))))
    return sizes


class Wakeup:
    """Set when a function has given a poller work; it ends the wait of every poller sharing it.
    A counter rather than a flag, so that each poller sees each `set()` and none clears it for the others."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._changed:
            return self._generation

    def set(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Until `set()` has been called since `generation` was `seen`, or `timeout`; True if it was."""
        with self._changed:
            return self._changed.wait_for(lambda: self._generation != seen, timeout)


class Backoff:
    """The waits between empty rounds: `first`, doubling up to `cap`; `reset()` starts over."""

    def __init__(self, first: float = IDLE_SECONDS, cap: float = IDLE_MAX_SECONDS) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def next(self) -> float:
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay


class PollingThread(threading.Thread):
    """A daemon thread that polls until `stop()`, counting the calls that failed. Between rounds it
    calls `idle(busy)`: no wait after a busy round, a backed-off one (ended by `wakeup`) after an
    empty one."""

    def __init__(self, name: str, *, wakeup: Wakeup | None = None, backoff: Backoff | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = threading.Event()
        self.errors = 0
        self.wakeup = wakeup or Wakeup()
        self.backoff = backoff or Backoff()
        self._seen = self.wakeup.generation
        self._round_began = time.monotonic()

    def idle(self, busy: bool) -> None:
        """After a round: go on at once if it found work, else wait until woken, stopped or the back-off ends."""
        woken = busy or (not self._stop_event.is_set() and self.wakeup.wait(self._seen, self.next_wait()))
        if woken:
            self.backoff.reset()
        if woken and not busy:  # writes that come in a burst share the next round
            self._stop_event.wait(max(0.0, self._round_began + WAKE_MIN_SECONDS - time.monotonic()))
        self._seen = self.wakeup.generation  # a set() during the next round ends the wait after it
        self._round_began = time.monotonic()

    def next_wait(self) -> float:
        """How long to wait after an empty round."""
        return self.backoff.next()

    def stop(self, timeout: float = 10) -> None:
        self._stop_event.set()
        self.wakeup.set()  # ends a wait (the other pollers sharing it just poll once more)
        if self.is_alive():
            self.join(timeout)


class QueuePoller(PollingThread):
    """Polls every source in turn until `stop()`; `invoke(function, event)` runs the function."""

    def __init__(
        self,
        sqs: Any,
        sources: list[Source],
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        parked: Path | None = None,
        wakeup: Wakeup | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__("lethe-sqs-poller", wakeup=wakeup, backoff=backoff)
        self.sqs = sqs
        self.sources = sources
        self.invoke = invoke
        self.parked = parked or Path(".local") / "parked"
        self.clock: Callable[[], float] = time.monotonic
        self._retry_due: float | None = None  # when the last message handed back becomes visible again

    def next_wait(self) -> float:
        """The back-off, cut short to poll when a message handed back for a retry is visible again."""
        delay = self.backoff.next()
        if self._retry_due is None:
            return delay
        remaining = self._retry_due - self.clock()
        if remaining > delay:
            return delay
        self._retry_due = None
        return max(0.0, remaining)

    def run(self) -> None:
        while not self._stop_event.is_set():
            busy = False
            for source in self.sources:
                if self._stop_event.is_set():
                    return
                try:
                    busy = self.poll_once(source) or busy
                except Exception as exc:  # the endpoint went away or a call failed: report and keep polling
                    self.errors += 1
                    if not self._stop_event.is_set():
                        print(f"  ! poller: {source.queue}: {type(exc).__name__}: {exc}", flush=True)
                        time.sleep(1)
            self.idle(busy)

    def poll_once(self, source: Source) -> bool:
        """Receive one batch from the source's queue and hand it to its function; False if it was empty."""
        received = self.sqs.receive_message(
            QueueUrl=source.url,
            MaxNumberOfMessages=source.batch_size,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return False
        try:
            result = self.invoke(source.function, sqs_event(received, source.arn))
        except Exception as exc:  # like Lambda: an exception fails the whole batch
            print(f"  ! {source.function} raised {type(exc).__name__}; the batch will be retried", flush=True)
            failed = {m["MessageId"] for m in received}
        else:
            failed = _failed_ids(result)
        for message in received:
            if message["MessageId"] in failed and self._exhausted(source, message):
                self._park(source, message)
            elif message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=source.url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=RETRY_VISIBILITY_SECONDS,
                )
                self._retry_due = self.clock() + RETRY_VISIBILITY_SECONDS + RETRY_MARGIN_SECONDS
            else:
                self.sqs.delete_message(QueueUrl=source.url, ReceiptHandle=message["ReceiptHandle"])
        return True

    @staticmethod
    def _exhausted(source: Source, message: dict[str, Any]) -> bool:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        return not source.has_dead_letter_queue and receives >= PARK_AFTER_RECEIVES

    def _park(self, source: Source, message: dict[str, Any]) -> None:
        self.parked.mkdir(parents=True, exist_ok=True)
        path = self.parked / f"{source.queue}-{message['MessageId']}.json"
        path.write_text(json.dumps({"queue": source.queue, "function": source.function, **message}, indent=2))
        self.sqs.delete_message(QueueUrl=source.url, ReceiptHandle=message["ReceiptHandle"])
        print(
            f"  ! {source.function} failed a message {PARK_AFTER_RECEIVES} times on {source.queue}, which has no "
            f"dead-letter queue; parked in {path} (AWS would retry it until its retention ends)",
            flush=True,
        )


def _failed_ids(result: Any) -> set[str]:
    if not isinstance(result, dict):
        return set()
    failures = result.get("batchItemFailures") or []
    return {str(f.get("itemIdentifier")) for f in failures if isinstance(f, dict)}


def queues_drained(sqs: Any, urls: list[str]) -> bool:
    """True when no queue holds a visible, in-flight or delayed message."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    for url in urls:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        if any(int(attributes.get(name, 0)) for name in names):
            return False
    return True


def wait_drained(sqs: Any, urls: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if queues_drained(sqs, urls):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(IDLE_SECONDS)

"""`lethe retention run --wait` on the local stack: the bar follows the count of items due after the sweep's
invoke returns (it returns after the stack's drain timeout on a slow machine while tasks still run)."""

from __future__ import annotations

import threading
import time
from typing import Any

from lethe_cli.client import Target
from lethe_cli.main import REPORT_PACE, _follow


class Reports:
    """The admin API's retention report, answering the counts given, then the last one for ever."""

    def __init__(self, *counts: int) -> None:
        self.counts = list(counts)
        self.target = Target(base_url="http://127.0.0.1:9")
        self.calls = 0

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        assert path == "/admin/retention/report"
        self.calls += 1
        return {"total_due": self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]}


def finished_sweep() -> threading.Thread:
    sweep = threading.Thread(target=lambda: None)
    sweep.start()
    sweep.join()
    return sweep


def test_after_the_sweep_returns_the_bar_follows_the_count_down_to_zero() -> None:
    reports = Reports(14, 9, 3, 0)
    remaining = _follow(reports, finished_sweep(), "2027-06-01T00:00:00Z", 20, timeout=30, poll=0.01, settle=5)  # type: ignore[arg-type]
    assert remaining == 0
    assert reports.calls == 4


def test_a_count_that_stops_changing_ends_the_wait_with_what_is_left() -> None:
    reports = Reports(4)
    remaining = _follow(reports, finished_sweep(), "2027-06-01T00:00:00Z", 6, timeout=30, poll=0.01, settle=0.2)  # type: ignore[arg-type]
    assert remaining == 4
    assert reports.calls >= 2


class SlowReports(Reports):
    """A report that takes `seconds` to answer, recording when each read began and ended."""

    def __init__(self, seconds: float, *counts: int) -> None:
        super().__init__(*counts)
        self.seconds = seconds
        self.spans: list[tuple[float, float]] = []
        self.enough = threading.Event()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        began = time.monotonic()
        time.sleep(self.seconds)
        answer = super().get(path, **params)
        self.spans.append((began, time.monotonic()))
        if self.calls >= 4:
            self.enough.set()
        return answer


def test_while_the_sweep_runs_each_read_waits_four_times_as_long_as_the_last_one_took() -> None:
    # Given a report that takes 50 ms, and a sweep still running until the bar has read it four times
    reports = SlowReports(0.05, 9, 7, 5, 3, 0)
    sweep = threading.Thread(target=reports.enough.wait, args=(30,))
    sweep.start()

    # When the bar follows it, asked to poll every 10 ms
    remaining = _follow(reports, sweep, "2027-06-01T00:00:00Z", 10, timeout=30, poll=0.01, settle=5)  # type: ignore[arg-type]

    # Then, while the sweep ran (the first four reads), no read began sooner after the one before than
    # four times that one's length; once it returned, the bar read the count down to zero
    assert remaining == 0 and reports.calls == 5
    for (began, ended), (next_began, _) in zip(reports.spans[:3], reports.spans[1:4], strict=True):
        assert next_began - ended >= REPORT_PACE * (ended - began) * 0.99

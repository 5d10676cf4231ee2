"""Benchmarks print a table with a ratio on every line and write their results as JSON under
tests/benchmarks/results/. They assert correctness of what they measure, never timings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

RESULTS = Path(__file__).parent / "results"


class BenchReport:
    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: list[dict[str, Any]] = []

    def row(self, metric: str, measured: float, baseline: float, *, target: str, unit: str = "", **extra: Any) -> float:
        ratio = measured / baseline if baseline else float("inf")
        self.rows.append(
            {
                "metric": metric,
                "measured": measured,
                "baseline": baseline,
                "ratio": round(ratio, 3),
                "target": target,
                "unit": unit,
                **extra,
            }
        )
        return ratio

    def print(self) -> None:
        width = max([len(r["metric"]) for r in self.rows] + [6])
        print(f"\n== {self.name}")
        print(f"{'metric':<{width}}  {'measured':>12}  {'baseline':>12}  {'ratio':>7}  target")
        for r in self.rows:
            print(
                f"{r['metric']:<{width}}  {r['measured']:>12.4g}  {r['baseline']:>12.4g}  {r['ratio']:>7.3f}  "
                f"{r['target']} {r['unit']}".rstrip()
            )

    def write(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps({"benchmark": self.name, "rows": self.rows}, indent=2))
        return path


@pytest.fixture
def bench_report(request: pytest.FixtureRequest) -> Iterator[BenchReport]:
    report = BenchReport(request.node.name.removeprefix("test_"))
    yield report
    report.print()
    report.write()

"""The retention dry run answers within API Gateway's 29 s: past its budget it stops reading and says
which datasets it did not read to the end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

SEEDED_AT = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
# Far enough ahead that every dataset with a retention rule has something to read.
AHEAD = datetime(2031, 1, 1, tzinfo=UTC)


@pytest.fixture
def demo(aws: Any) -> dict[str, int]:
    from lethe_local.seed import seed_demo_data

    return seed_demo_data(now=SEEDED_AT)


def test_an_unbounded_report_is_complete(demo: dict[str, int]) -> None:
    from lethe.logic import retention

    # When the dry run has all the time it needs
    report = retention.report(AHEAD)

    # Then it is complete, and so is every dataset
    assert report.complete is True
    assert report.datasets and all(entry.complete for entry in report.datasets.values())
    assert sum(entry.items_read for entry in report.datasets.values()) > 0


def test_a_spent_budget_marks_the_report_and_its_datasets_incomplete(demo: dict[str, int]) -> None:
    from lethe.logic import retention

    # Given what the full dry run counts
    full = retention.report(AHEAD)

    # When the budget is already spent
    bounded = retention.report(AHEAD, budget_seconds=0)

    # Then the report says it is incomplete, every dataset with work to read is marked, and no count
    # exceeds the full report's (they are lower bounds)
    assert bounded.complete is False
    assert set(bounded.datasets) == set(full.datasets)
    assert [n for n, e in bounded.datasets.items() if e.complete] == []
    for name, entry in bounded.datasets.items():
        assert entry.would_delete <= full.datasets[name].would_delete
        assert entry.items_read <= full.datasets[name].items_read


def test_the_route_budgets_from_the_function_time_left(demo: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.settings import get_settings
    from lethe_local.events import api_event
    from lethe_local.functions import LambdaContext, handler
    from lethe_local.template import functions, load_template

    monkeypatch.setenv("LETHE_ADMIN_TOKEN", "t-report-budget")
    get_settings.cache_clear()
    spec = functions(load_template())["AdminApiFunction"]
    event = api_event(
        "GET",
        "/admin/retention/report",
        query={"at": [AHEAD.isoformat().replace("+00:00", "Z")]},
        headers={"Authorization": "Bearer t-report-budget"},
    )

    # When the function has less time left than the report keeps in reserve
    short = handler(spec)(event, LambdaContext(function_name=spec.logical_id, timeout_ms=3_000))
    # And when it has its full timeout
    full = handler(spec)(event, LambdaContext(function_name=spec.logical_id, timeout_ms=spec.timeout * 1000))

    # Then the short call still answers 200, marked incomplete, and the full one is complete
    assert short["statusCode"] == 200
    assert json.loads(short["body"])["complete"] is False
    assert full["statusCode"] == 200
    assert json.loads(full["body"])["complete"] is True

"""The retention sweep on the demo data map (config/inventory.yaml) and the demo seed, driven by the
sample events in events/, as `make invoke FN=RetentionFunction EVENT=events/retention.json` does."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.integration.test_retention import _as_report, _report_counts, sweep, task_counts

SEEDED_AT = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)


def _keys(table: str, *attributes: str) -> set[Any]:
    items = boto3.resource("dynamodb", region_name="us-east-1").Table(table).scan(ConsistentRead=True)["Items"]
    return {tuple(i[a] for a in attributes) if len(attributes) > 1 else i[attributes[0]] for i in items}


def _item(table: str, key: dict[str, str]) -> dict[str, Any]:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(table).get_item(Key=key)["Item"]  # type: ignore[no-any-return]


@pytest.fixture
def demo(aws: Any) -> dict[str, int]:
    from lethe_local.seed import seed_demo_data

    return seed_demo_data(now=SEEDED_AT)


def _event_time(sample_event: Callable[[str], dict[str, Any]], name: str) -> datetime:
    return datetime.fromisoformat(sample_event(name)["time"].replace("Z", "+00:00"))


def test_the_sample_sweep_applies_the_inventory_to_the_demo_data(
    demo: dict[str, int], invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic import retention

    # Given the demo data, When the dry run and then the sample event's sweep run
    dry = _report_counts(retention.report(_event_time(sample_event, "retention.json")))
    summary = sweep(invoke, aws, sample_event("retention.json"))

    # Then guest sessions past 30 days are deleted and the recent one stays
    sessions = _keys("GuestSessionsTable", "session_id")
    assert {"gs-grace-1", "gs-grace-2"}.isdisjoint(sessions) and "gs-grace-3" in sessions
    # And diagnostics past 90 days are deleted (by the scan path), recent ones stay
    ada = {r for (e, r) in _keys("DiagnosticsTable", "user_email", "recorded_at") if e == "ada@example.com"}
    assert sorted(ada) == sorted(r for r in ada if r >= "2026-10-")
    assert len(ada) == 2
    # And invoices stay until their statutory end: only the one past 7 years goes
    invoices = _keys("InvoicesTable", "invoice_id")
    assert "inv-ada-2018" not in invoices and {"inv-ada-recent", "inv-linus-recent"} <= invoices
    # And the account idle for three years is anonymized in place; the active one is untouched
    alan = _item("AccountsTable", {"account_id": "acct-alan"})
    assert alan["name"] == "[redacted]" and alan["email"].startswith("anon:") and "password_hash" not in alan
    assert _item("AccountsTable", {"account_id": "acct-ada"})["name"] == "Ada Lovelace"
    # And feedback with chat logs goes after 180 days
    feedback = _keys("FeedbackTable", "feedback_id")
    assert {"fb-ada-old", "fb-alan-old"}.isdisjoint(feedback) and "fb-ada-new" in feedback
    # And the dry run predicted exactly this; datasets without an index are named, the first sweep of
    # the others was their one backfill
    assert summary["scan_datasets"] == ["diagnostics", "marketing_contacts"]
    assert _as_report(task_counts(summary["run_id"]), summary["paths"]) == dry
    assert dry["guest_sessions"]["would_delete"] >= 2 and dry["accounts"]["would_anonymize"] >= 1


def test_a_second_sample_sweep_changes_nothing(
    demo: dict[str, int], invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    tables = ["AccountsTable", "GuestSessionsTable", "DiagnosticsTable", "FeedbackTable", "InvoicesTable"]
    ddb = boto3.client("dynamodb", region_name="us-east-1")

    def snapshot() -> dict[str, list[str]]:
        return {
            t: sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=t, ConsistentRead=True)["Items"])
            for t in tables
        }

    # Given the sample sweep has run
    sweep(invoke, aws, sample_event("retention.json"))
    before = snapshot()

    # When it runs again, Then nothing changes
    summary = sweep(invoke, aws, sample_event("retention.json"))
    assert snapshot() == before
    totals = task_counts(summary["run_id"])
    assert sum(c["deleted"] + c["anonymized"] + c["isolated"] for c in totals.values()) == 0


def test_the_future_sample_sweeps_what_is_due_then(
    demo: dict[str, int], invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic import retention

    # Given today's sweep is done
    sweep(invoke, aws, sample_event("retention.json"))

    # When the sample event dated months ahead (2027-06-01) runs (by the indexes, now that they are swept)
    dry = _report_counts(retention.report(_event_time(sample_event, "retention_future.json")))
    summary = sweep(invoke, aws, sample_event("retention_future.json"))

    # Then what became due meanwhile goes, and what is still within its period stays
    assert "gs-grace-3" not in _keys("GuestSessionsTable", "session_id")
    assert not {e for (e, _) in _keys("DiagnosticsTable", "user_email", "recorded_at") if e == "ada@example.com"}
    assert "fb-ada-new" not in _keys("FeedbackTable", "feedback_id")
    assert {"inv-ada-recent", "inv-linus-recent"} <= _keys("InvoicesTable", "invoice_id")
    assert _item("AccountsTable", {"account_id": "acct-ada"})["name"] == "Ada Lovelace"
    assert summary["paths"]["guest_sessions"] == "index"
    assert _as_report(task_counts(summary["run_id"]), summary["paths"]) == dry

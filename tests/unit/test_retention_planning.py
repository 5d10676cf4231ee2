"""Retention planning and per-item decisions, without AWS: watermarks and holds are faked."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lethe.inventory import Inventory, load_inventory
from lethe.keys import KeyRing
from lethe.logic import retention
from lethe.logic.legal_holds import Hold

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "retention_inventory.yaml"
EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)
RING = KeyRing(current="k1", keys={"k1": b"k" * 32})


@pytest.fixture
def inventory(monkeypatch: pytest.MonkeyPatch) -> Inventory:
    loaded = load_inventory(FIXTURE)
    monkeypatch.setattr(retention, "get_inventory", lambda: loaded)
    return loaded


@pytest.fixture
def watermarks(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    marks: dict[str, str] = {}
    monkeypatch.setattr(retention.sweeps, "watermarks", lambda: marks)
    return marks


def test_an_index_dataset_never_swept_is_backfilled_by_scan_segments(
    inventory: Inventory, watermarks: dict[str, str]
) -> None:
    # Given sessions has a retention index but no watermark yet
    # When its run is planned
    tasks = retention.plan_dataset(inventory.dataset("sessions"), NOW, "run_u1")

    # Then it is one Scan task per segment, marked as the backfill
    assert [(t.path, t.segment, t.total_segments, t.backfill) for t in tasks] == [
        ("scan", s, 4, True) for s in range(4)
    ]


def test_an_index_dataset_is_planned_per_shard_from_its_watermark(
    inventory: Inventory, watermarks: dict[str, str]
) -> None:
    # Given sessions (3 shards) was last swept 40 days ago
    watermarks["sessions"] = (NOW - timedelta(days=40)).date().isoformat()

    # When today's run is planned
    tasks = retention.plan_dataset(inventory.dataset("sessions"), NOW, "run_u2")

    # Then each shard gets the days from the watermark day to today, in spans of 31 days at most
    spans = {(t.shard, t.first_day, t.last_day) for t in tasks}
    assert spans == {
        (shard, first, last)
        for shard in range(3)
        for first, last in [(date(2026, 10, 13), date(2026, 11, 12)), (date(2026, 11, 13), date(2026, 11, 22))]
    }
    assert all(t.path == "index" and not t.backfill for t in tasks)


def test_a_recent_watermark_still_rereads_the_overlap_window(inventory: Inventory, watermarks: dict[str, str]) -> None:
    # Given sessions was swept yesterday
    watermarks["sessions"] = "2026-11-21"

    # When the window is computed, Then it reaches back the default 7 days of overlap
    assert retention.sweep_window(inventory.dataset("sessions"), NOW.date(), watermarks) == (
        date(2026, 11, 15),
        NOW.date(),
    )


def test_a_dataset_without_index_is_scanned_and_named_with_a_suggestion(
    inventory: Inventory, watermarks: dict[str, str]
) -> None:
    logs = inventory.dataset("logs")
    tasks = retention.plan_dataset(logs, NOW, "run_u3")
    assert {t.path for t in tasks} == {"scan"} and not any(t.backfill for t in tasks)
    suggestion = retention.suggestion_for(logs)
    assert suggestion is not None and "retention.index" in suggestion
    assert retention.suggestion_for(inventory.dataset("sessions")) is None
    assert retention.plan_dataset(inventory.dataset("contacts"), NOW, "run_u3") == []


def _sweep(inventory: Inventory, monkeypatch: pytest.MonkeyPatch, dataset: str, held: set[str]) -> retention._Sweep:
    holds = [
        Hold(hold_id=f"hold_{n}", subject_ref=RING.subject_ref(email), reason="litigation", placed_at=NOW.isoformat())
        for n, email in enumerate(sorted(held))
    ]
    monkeypatch.setattr(retention, "list_holds", lambda active_only: holds)
    spec = inventory.dataset(dataset)
    assert spec.retention is not None
    return retention._Sweep(spec, spec.retention, NOW, apply=False, ring=RING)


def test_the_dry_decisions_count_each_kind_of_item(inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given sessions items: expired, fresh, restricted, held, without a since, expired by epoch seconds
    sweep = _sweep(inventory, monkeypatch, "sessions", held={"held@example.com"})
    old = (NOW - timedelta(days=31)).isoformat()
    items: list[dict[str, Any]] = [
        {"session_id": "a", "user_email": "a@example.com", "started_at": old},
        {"session_id": "b", "user_email": "b@example.com", "started_at": (NOW - timedelta(days=29)).isoformat()},
        {"session_id": "c", "user_email": "c@example.com", "started_at": old, "lethe_restricted": True},
        {"session_id": "d", "user_email": "held@example.com", "started_at": old},
        {"session_id": "e", "user_email": "e@example.com"},
        {"session_id": "f", "user_email": "f@example.com", "started_at": int((NOW - timedelta(days=40)).timestamp())},
    ]

    # When they are handled without writes
    sweep.handle(items)
    sweep.flush()

    # Then each is counted where it belongs
    counts = sweep.counts
    assert (counts.items_read, counts.deleted, counts.not_due) == (6, 2, 2)
    assert (counts.skipped_restricted, counts.skipped_under_hold, counts.isolated) == (1, 1, 0)


def test_an_item_due_exactly_now_is_due_and_one_second_later_is_not(
    inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = _sweep(inventory, monkeypatch, "sessions", held=set())
    assert sweep.is_due({"started_at": (NOW - timedelta(days=30)).isoformat()})
    assert not sweep.is_due({"started_at": (NOW - timedelta(days=30) + timedelta(seconds=1)).isoformat()})
    assert not sweep.is_due({"started_at": "not a time"})


def test_an_anonymized_item_is_not_anonymized_again(inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = _sweep(inventory, monkeypatch, "profiles", held=set())
    epoch = int((NOW - timedelta(days=400)).timestamp())
    sweep.handle(
        [
            {"profile_id": "p1", "email": "p1@example.com", "last_seen": epoch},
            {"profile_id": "p2", "email": "pseud:x", "last_seen": epoch, "lethe_anonymized_at": NOW.isoformat()},
        ]
    )
    assert (sweep.counts.anonymized, sweep.counts.not_due) == (1, 1)


def test_the_sample_worker_event_carries_a_valid_task() -> None:
    body = json.loads((EVENTS / "retention_worker.json").read_text())["Records"][0]["body"]
    task = retention.RetentionTask.model_validate_json(body)
    assert (task.path, task.dataset, task.shard) == ("index", "guest_sessions", 0)
    assert task.first_day is not None and task.last_day is not None and task.first_day <= task.last_day

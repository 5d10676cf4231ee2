"""The vault: isolation is atomic and idempotent, conditional on the live item being unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from lethe.errors import ConflictingWrite

NOW = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)


def _guest_session(**extra: Any) -> dict[str, Any]:
    return {
        "session_id": f"s-{uuid.uuid4()}",
        "guest_email": f"guest-{uuid.uuid4().hex[:8]}@example.com",
        "ip_address": "203.0.113.7",
        "started_at": "2026-01-01T10:00:00+00:00",
        "tags": {"a", "b"},
        "meta": {"n": Decimal(3), "list": [1, "x"]},
        "blob": b"\x00\x01",
        "nums": {Decimal(2), Decimal(1)},
        **extra,
    }


def _put(table: Any, item: dict[str, Any]) -> None:
    table.put_item(Item=item)


@pytest.fixture
def sessions(aws: Any) -> Any:
    import boto3

    return boto3.resource("dynamodb", region_name="us-east-1").Table("GuestSessionsTable")


def test_isolate_moves_the_item_into_the_vault_once(sessions: Any) -> None:
    from lethe.data import vault
    from lethe.inventory import get_inventory

    # Given a live guest session
    dataset = get_inventory().dataset("guest_sessions")
    item = _guest_session()
    _put(sessions, item)
    key = {"session_id": item["session_id"]}

    # When it is isolated, and the same isolation is delivered again
    first = vault.isolate_item(
        dataset,
        key,
        item,
        reason="legal_hold",
        purge_at=NOW + timedelta(days=30),
        subject_ref="k1:abc",
        request_id="req-1",
        hold_ids=["H1"],
        now=NOW,
    )
    second = vault.isolate_item(
        dataset,
        key,
        item,
        reason="legal_hold",
        purge_at=NOW + timedelta(days=30),
        subject_ref="k1:abc",
        request_id="req-1",
        hold_ids=["H1"],
        now=NOW,
    )

    # Then the live item is gone, the vault holds it exactly, and the redelivery changed nothing
    assert (first, second) == (True, False)
    assert "Item" not in sessions.get_item(Key=key)
    entry = vault.get_entry(vault.vault_id_for("guest_sessions", key, item))
    assert entry is not None
    assert entry.item == item
    assert entry.item_key == key
    assert entry.hold_ids == ["H1"]
    assert entry.purge_day == "2026-12-22"
    assert [e.vault_id for e in vault.entries_for_subject(["k1:abc"])] == [entry.vault_id]


def test_isolate_refuses_an_item_changed_since_it_was_read(sessions: Any) -> None:
    from lethe.data import vault
    from lethe.inventory import get_inventory

    # Given an item read, then changed by the service
    dataset = get_inventory().dataset("guest_sessions")
    item = _guest_session()
    _put(sessions, {**item, "ip_address": "198.51.100.1"})
    key = {"session_id": item["session_id"]}

    # When the stale copy is isolated, Then nothing is written
    with pytest.raises(ConflictingWrite):
        vault.isolate_item(
            dataset, key, item, reason="retention", purge_at=NOW, subject_ref=None, request_id=None, now=NOW
        )
    assert sessions.get_item(Key=key)["Item"]["ip_address"] == "198.51.100.1"
    assert vault.get_entry(vault.vault_id_for("guest_sessions", key, item)) is None


def test_purge_due_records_and_defer_held_ones(sessions: Any) -> None:
    from lethe.data import vault
    from lethe.inventory import get_inventory

    # Given two isolated items due today
    dataset = get_inventory().dataset("guest_sessions")
    items = [_guest_session(), _guest_session()]
    for item in items:
        _put(sessions, item)
        vault.isolate_item(
            dataset,
            {"session_id": item["session_id"]},
            item,
            reason="retention",
            purge_at=NOW - timedelta(days=1),
            subject_ref=None,
            request_id=None,
            now=NOW - timedelta(hours=1),
        )
    due = list(vault.due_on(NOW.date().isoformat(), NOW))
    assert len(due) == 2

    # When one is purged and the other deferred under a hold
    first, second = (vault.get_entry(d.vault_id) for d in due)
    assert first is not None and second is not None
    assert vault.defer(second, until=NOW + timedelta(days=1), hold_ids=["H9"])
    assert vault.purge(first)

    # Then only the deferred one remains, filed under tomorrow, and a stale purge is refused
    assert vault.get_entry(first.vault_id) is None
    assert not vault.purge(second)
    assert list(vault.due_on(NOW.date().isoformat(), NOW)) == []
    assert [d.vault_id for d in vault.due_on("2026-11-23", NOW + timedelta(days=1))] == [second.vault_id]

"""VaultPurgeFunction: purges due vault records that no hold covers, by purge day, with an audit record per batch."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

NOW = datetime(2026, 11, 22, 3, 45, tzinfo=UTC)


def _isolate(email: str, *, purge_at: datetime) -> str:
    from lethe.data import vault
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring

    dataset = get_inventory().dataset("invoices")
    item = {"invoice_id": f"inv-{uuid.uuid4().hex[:10]}", "billing_email": email, "issued_at": "2019-01-01"}
    boto3.resource("dynamodb", region_name="us-east-1").Table("InvoicesTable").put_item(Item=item)
    key = {"invoice_id": item["invoice_id"]}
    assert vault.isolate_item(
        dataset,
        key,
        item,
        reason="statutory_retention",
        purge_at=purge_at,
        subject_ref=key_ring().subject_ref(email),
        request_id=None,
        now=NOW - timedelta(days=10),
    )
    return vault.vault_id_for("invoices", key, item)


def _event(sample_event: Callable[[str], dict[str, Any]], moment: datetime) -> dict[str, Any]:
    event = sample_event("vault_purge.json")
    event["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def test_due_records_are_purged_held_and_future_ones_stay(
    invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.data import vault
    from lethe.data.models import AuditRecord
    from lethe.logic import legal_holds

    # Given a due record, a due record under a hold and one due next year
    tag = uuid.uuid4().hex[:8]
    due = _isolate(f"due-{tag}@example.com", purge_at=NOW - timedelta(days=1))
    held_email = f"held-{tag}@example.com"
    held = _isolate(held_email, purge_at=NOW - timedelta(days=2))
    future = _isolate(f"later-{tag}@example.com", purge_at=NOW + timedelta(days=365))
    hold = legal_holds.place(email=held_email, reason="tax audit")

    # When the purge runs
    result = invoke("VaultPurgeFunction", _event(sample_event, NOW))

    # Then only the due, unheld record is gone, and the batch is audited without personal data
    assert (result["purged"], result["kept_under_hold"]) == (1, 1)
    assert vault.get_entry(due) is None
    kept = vault.get_entry(held)
    assert kept is not None and kept.hold_ids == [hold.hold_id] and kept.purge_day == "2026-11-23"
    assert vault.get_entry(future) is not None
    batches = [r for r in AuditRecord.query("main") if r.action == "vault.purge_batch"]
    assert sorted((b.details["purged"], b.details["kept_under_hold"]) for b in batches) == [(0, 1), (1, 0)]
    assert all("@" not in str(b.details) for b in batches)

    # When the hold is lifted and the purge runs the next day
    legal_holds.lift(hold.hold_id)
    again = invoke("VaultPurgeFunction", _event(sample_event, NOW + timedelta(days=1)))

    # Then the formerly held record is purged, and the future one still waits
    assert again["purged"] == 1
    assert vault.get_entry(held) is None
    assert vault.get_entry(future) is not None


def test_a_second_purge_the_same_day_changes_nothing(
    invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given a due record purged once
    _isolate(f"twice-{uuid.uuid4().hex[:8]}@example.com", purge_at=NOW - timedelta(hours=1))
    first = invoke("VaultPurgeFunction", _event(sample_event, NOW))

    # When the purge runs again, Then nothing is left to do
    second = invoke("VaultPurgeFunction", _event(sample_event, NOW))
    assert (first["purged"], second["purged"], second["batches"]) == (1, 0, 0)

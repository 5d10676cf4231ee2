"""What the subject is told, and where isolated items' purge dates come from (no AWS involved)."""

from __future__ import annotations

from datetime import UTC, datetime

from lethe.inventory import get_inventory
from lethe.logic.certificates import erasure_lines
from lethe.logic.exports import dataset_header
from lethe.logic.fulfilment_work import purge_at

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def test_certificate_lists_each_dataset_and_why_anything_was_kept() -> None:
    # Given task results for three datasets
    results = {
        "accounts": {"action": "anonymize", "anonymized": 1},
        "invoices": {"action": "isolate", "isolated": 2, "kept_because": "Statutory retention of invoices"},
        "feedback": {"action": "delete", "deleted": 0},
    }
    # When the certificate lines are written
    lines = erasure_lines(results)
    # Then each dataset is named with what happened, and the reason for keeping is given
    assert any("1 anonymized" in line and "Account holders" in line for line in lines)
    assert any("2 isolated" in line and "Statutory retention of invoices" in line for line in lines)
    assert any("nothing held about you" in line for line in lines)


def test_purge_date_is_the_end_of_retention_never_the_past() -> None:
    invoices = get_inventory().dataset("invoices")
    assert purge_at(invoices, {"issued_at": "2025-01-01T00:00:00Z"}, NOW) == datetime(2032, 1, 1, tzinfo=UTC)
    assert purge_at(invoices, {"issued_at": "2010-01-01T00:00:00Z"}, NOW) == NOW
    assert purge_at(invoices, {}, NOW) == NOW


def test_export_header_names_purposes_recipients_and_retention() -> None:
    header = dataset_header(get_inventory().dataset("guest_sessions"))
    assert header["purposes"] and header["recipients"]
    assert header["retention"]["kept_for"] == "P30D"
    assert "customer" in header["controller"]
    assert header["categories"]["ip_address"] == "user.device.ip_address"

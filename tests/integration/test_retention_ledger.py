"""The erasure ledger: every item an erasure or a retention sweep erases gets a row of HMACs, written
from the data layer both use; nothing raw is kept, and redelivery adds nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3

from lethe.domain import RequestType, Status
from tests.integration.test_erasure import seed_subject
from tests.integration.test_retention import event_at, sweep, task_counts
from tests.support.fulfilment import drain, new_request, unique_email

Invoke = Callable[..., Any]


def ledger_rows() -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("ErasureLedgerTable")
    return table.scan(ConsistentRead=True)["Items"]  # type: ignore[no-any-return]


def test_an_erasure_records_its_subject_and_every_item_it_erased_as_hmacs(invoke: Invoke) -> None:
    from lethe.data import ledger
    from lethe.keys import key_ring
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    # Given a subject in every demo dataset, and a bystander
    email, other = unique_email("ledger"), unique_email("bystander")
    seed_subject(email, "l1")
    seed_subject(other, "l2")
    request_id = new_request(RequestType.erasure, email)

    # When the erasure runs, and a task is delivered again
    fulfilment.start(request_id)
    assert drain(invoke) == []
    assert get_request(request_id).status is Status.completed
    before = ledger_rows()
    fulfilment.run_task(request_id, "guest_sessions")

    # Then the subject and each erased item have one row, with the action applied to it
    ref = key_ring().subject_ref(email)
    rows = ledger_rows()
    assert len(rows) == len(before)
    items = sorted((r["dataset"], r["action"]) for r in rows if r["kind"] == "item")
    assert items == [
        ("accounts", "anonymize"),
        ("diagnostics", "delete"),
        ("diagnostics", "delete"),
        ("diagnostics", "delete"),
        ("feedback", "delete"),
        ("guest_sessions", "delete"),
        ("invoices", "isolate"),
        ("marketing_contacts", "delete"),
    ]
    assert {r["subject_ref"] for r in rows} == {ref}
    assert {r["source"] for r in rows if r["kind"] == "item"} == {"erasure"}
    assert ledger.subjects_erased([ref, key_ring().subject_ref(other)]).keys() == {ref}
    # And a key is found again by its HMAC
    assert ledger.items_erased("guest_sessions", [ledger.key_ref("guest_sessions", {"session_id": "gs-l1"})])
    # And no raw value is kept: no address, no key
    dump = json.dumps(rows)
    assert email not in dump and "gs-l1" not in dump and "acct-l1" not in dump and "inv-l1" not in dump


def test_a_retention_sweep_records_every_item_it_erased(
    aws: Any, invoke: Invoke, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe_local.seed import seed_demo_data

    # Given the demo data, When the sample sweep runs
    seed_demo_data(now=datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    summary = sweep(invoke, aws, event_at(sample_event, datetime(2026, 11, 22, 2, 15, tzinfo=UTC)))

    # Then each item it deleted, anonymized or isolated has a retention row, per dataset and action
    counts = task_counts(summary["run_id"])
    rows = [r for r in ledger_rows() if r["kind"] == "item"]
    assert {r["source"] for r in rows} == {"retention"}
    for dataset, done in counts.items():
        for action, counted in (("delete", "deleted"), ("anonymize", "anonymized"), ("isolate", "isolated")):
            recorded = sum(1 for r in rows if r["dataset"] == dataset and r["action"] == action)
            assert recorded == done.get(counted, 0) + (done.get("skipped_under_hold", 0) if action == "isolate" else 0)
    assert sum(c.get("deleted", 0) for c in counts.values()) > 0


def test_the_certificate_says_until_when_backups_may_hold_the_erased_data(invoke: Invoke) -> None:
    from datetime import timedelta

    from lethe.logic import fulfilment
    from tests.support.fulfilment import mails_to

    # Given the demo tables keep 35 days of PITR (the template's setting), and the feedback table 7
    boto3.client("dynamodb", region_name="us-east-1").update_continuous_backups(
        TableName="FeedbackTable",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 7},
    )
    email = unique_email("backups")
    seed_subject(email, "b1")
    request_id = new_request(RequestType.erasure, email)

    # When the erasure completes
    fulfilment.start(request_id)
    assert drain(invoke) == []

    # Then its certificate names, per window, the day until which backups may hold the data
    certificate = next(text for subject, text in mails_to(email) if "erasure" in subject.lower())
    today = datetime.now(UTC)
    assert f"- {(today + timedelta(days=7)).date().isoformat()}: Send-Feedback reports" in certificate
    later = next(
        line for line in certificate.splitlines() if line.startswith(f"- {(today + timedelta(days=35)).date()}")
    )
    assert "Account holders" in later and "Guests a customer authorized" in later and "Send-Feedback" not in later
    assert "we erase your data from it again" in certificate

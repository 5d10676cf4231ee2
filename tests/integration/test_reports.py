"""Reports: the § 7102 metrics, computed from the audit, match a recount of the raw requests made here
(rows and their events), and the Art. 30 record of processing comes from the inventory."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.fulfilment import admin_call, drain, put_items, unique_email, use_admin_token

Invoke = Callable[..., Any]


def header(answer: dict[str, Any], name: str) -> str:
    single = answer.get("headers") or {}
    multi = answer.get("multiValueHeaders") or {}
    return str(single.get(name) or multi[name][0])


def submitted(kind: RequestType, email: str, at: datetime) -> str:
    from lethe.logic import intake

    return intake.submit(intake.Submission(type=kind, email=email), source_ip=None, now=at).request_id


def verified(request_id: str, at: datetime) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import transition

    transition(request_id, Status.pending, allowed_from={Status.identity_unverified}, actor="subject", now=at)
    fulfilment.start(request_id)


def recount(request_ids: list[str], first: datetime, last: datetime) -> dict[str, dict[str, Any]]:
    """The metrics from the request rows and their events alone (not from the audit)."""
    from lethe.data import requests as repository

    counts: dict[str, dict[str, Any]] = {}
    spent: dict[str, list[float]] = {}
    for request_id in request_ids:
        row = repository.get(request_id)
        if not first <= row.created_at < last:
            continue
        kind = row.type.value
        entry = counts.setdefault(
            kind, {"received": 0, "completed_in_whole": 0, "completed_in_part": 0, "denied": 0, "not_answered": 0}
        )
        entry["received"] += 1
        if row.status not in (Status.completed, Status.denied):
            entry["not_answered"] += 1
            continue
        answered_at = next(e.at for e in repository.events(request_id) if e.to_status is row.status)
        spent.setdefault(kind, []).append((answered_at - row.created_at).total_seconds() / 86400)
        if row.status is Status.denied:
            entry["denied"] += 1
            continue
        kept = [
            summary
            for summary in (row.outcome or {}).get("datasets", {}).values()
            if summary.get("isolated", 0) > 0 or summary.get("kept", 0) > 0
        ]
        entry["completed_in_part" if kept else "completed_in_whole"] += 1
    for kind, days in spent.items():
        counts[kind]["median_days_to_respond"] = round(statistics.median(days), 2)
        counts[kind]["mean_days_to_respond"] = round(statistics.mean(days), 2)
    return counts


def test_metrics_from_the_audit_match_a_recount_of_the_requests(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.logic.requests import transition

    use_admin_token(monkeypatch)
    now = datetime.now(UTC)
    # Given requests of several types, received at different times, answered in different ways
    held = unique_email("held")  # has an invoice: an erasure isolates it (completed in part)
    put_items("InvoicesTable", [{"invoice_id": f"inv-{held}", "billing_email": held, "issued_at": "2025-01-01"}])
    put_items("MarketingContactsTable", [{"email": held, "name": "Held", "last_engaged_at": "2026-10-01"}])
    plain = unique_email("plain")  # only a marketing contact: erased in whole
    put_items("MarketingContactsTable", [{"email": plain, "name": "Plain", "last_engaged_at": "2026-10-01"}])

    in_part = submitted(RequestType.erasure, held, now - timedelta(days=10))
    verified(in_part, now - timedelta(days=9))
    whole = submitted(RequestType.erasure, plain, now - timedelta(days=3))
    verified(whole, now - timedelta(days=3))
    access = submitted(RequestType.access, unique_email("access"), now - timedelta(days=5))
    verified(access, now - timedelta(days=5))
    assert drain(invoke) == []
    denied = submitted(RequestType.access, unique_email("denied"), now - timedelta(days=2))
    transition(
        denied,
        Status.awaiting_approval,
        allowed_from={Status.identity_unverified},
        actor="subject",
        now=now - timedelta(days=2),
    )
    status, _ = admin_call(
        invoke,
        "POST",
        f"/admin/requests/{denied}/deny",
        resource="/admin/requests/{id}/deny",
        path_parameters={"id": denied},
        body={"reason": "we could not confirm the authorization"},
    )
    assert status == 200
    waiting = submitted(RequestType.marketing_opt_out, unique_email("waiting"), now - timedelta(days=1))
    too_old = submitted(RequestType.erasure, unique_email("old"), now - timedelta(days=40))
    verified(too_old, now - timedelta(days=40))
    assert drain(invoke) == []

    # When the report covers the last 30 days
    first_day, last_day = (now - timedelta(days=30)).date(), now.date()
    query = {"from": [first_day.isoformat()], "to": [last_day.isoformat()]}
    status, report = admin_call(invoke, "GET", "/admin/reports/metrics", resource="/admin/reports/metrics", query=query)
    assert status == 200, report

    # Then it matches the recount of the raw requests, type by type
    ids = [in_part, whole, access, denied, waiting, too_old]
    opens = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    expected = recount(ids, opens, opens + timedelta(days=31))
    shown = {row["type"]: row for row in report["types"] if row["received"]}
    assert set(shown) == set(expected)
    for kind, counted in expected.items():
        for key, value in counted.items():
            assert shown[kind][key] == value, (kind, key)
    # And the counts are what these requests were
    assert shown["erasure"]["received"] == 2
    assert (shown["erasure"]["completed_in_part"], shown["erasure"]["completed_in_whole"]) == (1, 1)
    assert (shown["access"]["completed_in_whole"], shown["access"]["denied"]) == (1, 1)
    assert shown["marketing_opt_out"]["not_answered"] == 1
    assert 6.49 <= shown["erasure"]["mean_days_to_respond"] <= 6.51  # answered after 10 and 3 days
    assert report["period_from"] == first_day.isoformat()

    # And the CSV says the same
    from lethe_local.events import api_event

    event = api_event(
        "GET",
        "/admin/reports/metrics",
        resource="/admin/reports/metrics",
        query={**query, "format": ["csv"]},
        headers={"Authorization": "Bearer fulfilment-tests-token"},
    )
    answer = invoke("AdminApiFunction", event)
    assert answer["statusCode"] == 200
    assert header(answer, "Content-Type").startswith("text/csv")
    rows = {row["type"]: row for row in csv.DictReader(io.StringIO(answer["body"]))}
    assert rows["erasure"]["completed_in_part"] == "1"
    assert rows["access"]["denied"] == "1"
    assert float(rows["erasure"]["median_days_to_respond"]) == shown["erasure"]["median_days_to_respond"]


def test_the_record_of_processing_comes_from_the_inventory_and_bad_periods_are_4xx(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.inventory import get_inventory

    use_admin_token(monkeypatch)
    path = "/admin/reports/processing"
    status, record = admin_call(invoke, "GET", path, resource=path)
    assert status == 200
    by_name = {entry["dataset"]: entry for entry in record["activities"]}
    assert list(by_name) == [*get_inventory().datasets, "lethe", "privacy_inbox"]
    accounts = by_name["accounts"]
    assert "user.contact.email" in accounts["categories"]
    assert accounts["purposes"] == ["account_management", "service_provision", "billing", "service_notices"]
    assert "Microsoft Azure (data storage)" in accounts["recipients"]
    assert accounts["transfers"][0] == {
        "to": "United States (CaféX Communications Inc.)",
        "safeguard": "EU-US Data Privacy Framework",
    }
    assert by_name["invoices"]["retention"]["kept_for"] == "P7Y"
    assert by_name["invoices"]["retention"]["basis"].startswith("Statutory retention")
    assert by_name["guest_sessions"]["controller"].startswith("processor")

    # The same as a page, with the pages' security headers
    from lethe_local.events import api_event

    event = api_event(
        "GET",
        path,
        resource=path,
        query={"format": ["html"]},
        headers={"Authorization": "Bearer fulfilment-tests-token"},
    )
    answer = invoke("AdminApiFunction", event)
    assert answer["statusCode"] == 200
    assert header(answer, "Content-Type").startswith("text/html")
    assert "default-src 'none'" in header(answer, "Content-Security-Policy")
    assert "<th scope=row>invoices</th>" in answer["body"]
    assert json.dumps(record)  # the JSON form is plain JSON

    # A bad period for the metrics is a 4xx
    path = "/admin/reports/metrics"
    status, body = admin_call(invoke, "GET", path, resource=path, query={"from": ["2027-02-01"], "to": ["2027-01-01"]})
    assert (status, body["error"]["code"]) == (400, "invalid_report_period")
    status, _ = admin_call(invoke, "GET", path, resource=path, query={"from": ["yesterday"], "to": ["2027-01-01"]})
    assert status == 422
    status, _ = admin_call(invoke, "GET", path, resource=path, query={"to": ["2027-01-01"]})
    assert status == 422

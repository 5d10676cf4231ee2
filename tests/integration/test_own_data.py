"""Lethe's own data under its own rules, through the real handlers: the vault and Lethe's own records
in an access export; an erasure that also erases earlier exports (and kills their links), consent
contacts and the contact details of the subject's other requests; the scrub of ended requests by the
retention run; pseudonyms nobody holding Lethe's keys can recompute."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.integration.test_access import export_object, get_export
from tests.support.fulfilment import drain, get_item, mails_to, new_request, put_items, unique_email

Invoke = Callable[..., Any]


def run_request(invoke: Invoke, kind: RequestType, email: str, **extra: Any) -> str:
    from lethe.logic import fulfilment

    request_id = new_request(kind, email, **extra)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    return request_id


def export_token(email: str) -> str:
    texts = [text for subject, text in mails_to(email) if "export" in subject.lower()]
    return re.search(r"/exports/(\S+)", texts[-1]).group(1)  # type: ignore[union-attr]


def export_versions(request_id: str) -> list[dict[str, Any]]:
    from lethe.aws import client
    from lethe.settings import get_settings

    page = client("s3").list_object_versions(Bucket=get_settings().export_bucket, Prefix=f"exports/{request_id}/")
    return [*page.get("Versions", []), *page.get("DeleteMarkers", [])]


def summary_row(request_id: str) -> dict[str, Any]:
    row = get_item("RequestsTable", {"pk": f"REQ#{request_id}", "sk": "SUMMARY"})
    assert row is not None
    return row


def certificate_of(email: str) -> str:
    texts = [text for subject, text in mails_to(email) if "erasure" in subject.lower()]
    assert len(texts) == 1
    return texts[0]


def test_access_export_shows_what_the_vault_and_lethe_hold_with_reason_and_purge_date(invoke: Invoke) -> None:
    from lethe.logic.requests import get_request
    from lethe_local.seed import seed_demo_data

    # Given the demo data, and ada's invoices isolated in the vault by an earlier erasure
    seed_demo_data(now=datetime.now(UTC))
    email = "ada@example.com"
    put_items(
        "InvoicesTable",
        [
            {
                "invoice_id": "inv-ada-markup",
                "billing_email": email,
                "billing_name": "<i>Ada</i>",
                "issued_at": "2026-01-02",
            }
        ],
    )
    run_request(invoke, RequestType.erasure, email)
    # When ada asks for her data
    request_id = run_request(invoke, RequestType.access, email)
    assert get_request(request_id).status is Status.completed
    export = json.loads(export_object(request_id, "export.json"))
    page = export_object(request_id, "export.html").decode()
    # Then export.json lists each vault item with its dataset, reason and purge date
    kept = export["vault"]["items"]
    by_id = {k["item"]["invoice_id"]: k for k in kept}
    assert sorted(by_id) == ["inv-ada-2018", "inv-ada-markup", "inv-ada-recent"]
    for entry in kept:
        assert entry["dataset"] == "invoices" and entry["reason"] == "statutory_retention"
        assert entry["why"].startswith("Statutory retention of invoices")
    # (the 2018 invoice is past its statutory end: it goes with the next purge; the recent one in 7 years)
    assert datetime.fromisoformat(by_id["inv-ada-2018"]["purge_at"]) <= datetime.now(UTC)
    assert datetime.fromisoformat(by_id["inv-ada-recent"]["purge_at"]) > datetime.now(UTC) + timedelta(days=6 * 365)
    markup = next(k for k in kept if k["item"]["invoice_id"] == "inv-ada-markup")
    assert markup["purge_at"].startswith("2033-01-02")
    # and the invoices dataset itself no longer holds them
    assert export["datasets"]["invoices"]["items"] == []
    # and Lethe is a dataset of its own export: both of ada's requests, with what each holds
    lethe = export["datasets"]["lethe"]
    requests = {i["request_id"]: i for i in lethe["items"] if i["record"] == "request"}
    assert set(requests) >= {request_id} and {i["type"] for i in requests.values()} == {"access", "erasure"}
    assert requests[request_id]["email"] == email and lethe["retention"]["kept_for"] == "P90D"
    # and export.html shows the vault with reason and purge date, every value escaped
    assert "Kept apart in our vault" in page and "Statutory retention of invoices" in page
    assert "2033-01-02" in page and "We hold nothing about you here" in page  # only for emptied datasets
    assert "&lt;i&gt;Ada&lt;/i&gt;" in page and "<i>Ada</i>" not in page


def test_erasure_erases_earlier_exports_consent_contacts_and_other_requests(invoke: Invoke) -> None:
    from lethe.data.consents import contacts_for, current
    from lethe.keys import key_ring
    from tests.integration.test_consent_ledger import mint, subscribe

    email, other = unique_email("own"), unique_email("bystander")
    put_items(
        "AccountsTable", [{"account_id": "acct-own", "email": email, "name": "Ada", "last_active_at": "2026-11-01"}]
    )
    # Given an earlier access export with a working link (and a bystander's)
    access_id = run_request(invoke, RequestType.access, email)
    bystander_id = run_request(invoke, RequestType.access, other)
    token = export_token(email)
    assert get_export(invoke, token)["statusCode"] == 302
    assert export_versions(access_id)
    # and a newsletter subscription and policy notices reaching the address, from a device, confirmed
    device = subscribe(invoke, {"strictly_necessary": True, "marketing_email": True, "policy_updates": True}, email).id
    # and another device still waiting for the address to confirm it
    pending, _ = mint(invoke, {"strictly_necessary": True, "policy_updates": True}, email=email)
    assert any(s.pending_contact == email for s in current(pending.id))
    assert len(contacts_for(key_ring().subject_refs(email))) == 2
    # and a finished rectification with corrections, and an open request with what the person wrote
    rectified_id = run_request(invoke, RequestType.rectification, email, corrections={"name": "Ada King"})
    open_id = new_request(RequestType.complaint, email, status=Status.identity_unverified)
    from lethe.data.models import RequestSummaryRecord

    RequestSummaryRecord(f"REQ#{open_id}", "SUMMARY").update(
        actions=[RequestSummaryRecord.details.set("my complaint text"), RequestSummaryRecord.name.set("Ada")]
    )
    # When the subject's erasure runs
    erasure_id = run_request(invoke, RequestType.erasure, email)
    # Then the earlier link is dead and every version of its objects is gone
    assert get_export(invoke, token)["statusCode"] in (404, 410)
    assert export_versions(access_id) == []
    # while the bystander's export is untouched
    assert export_versions(bystander_id)
    # and no consent row can reach the address any more
    assert contacts_for(key_ring().subject_refs(email)) == []
    states = {s.purpose: s for s in current(device)}
    assert not any(s.pending_contact or s.pending_contact_ref for s in current(pending.id))
    assert states["marketing_email"].granted is False and states["marketing_email"].contact is None
    assert states["policy_updates"].granted is False and states["policy_updates"].contact is None
    # and the finished requests keep no address, name or corrections; the open one keeps only its address
    for request_id in (access_id, rectified_id, erasure_id):
        row = summary_row(request_id)
        assert not {"email", "name", "details", "corrections", "erasure_key"} & set(row), request_id
    still_open = summary_row(open_id)
    assert still_open["email"] == email and "details" not in still_open
    # and the rectification's history keeps which dataset was corrected, not the values
    from lethe.data.requests import events

    rectified = [e for e in events(rectified_id) if e.kind == "rectified"]
    assert rectified and all(set(e.detail or {}) == {"dataset"} for e in rectified)
    assert "Ada King" not in json.dumps([e.model_dump(mode="json") for e in events(rectified_id)])
    # and the certificate says what of Lethe's own copies was erased
    certificate = certificate_of(email)
    assert "download links no longer work" in certificate
    assert "from 1 export(s)" in certificate
    assert "Consent records that could reach your address: 2 cleared" in certificate
    assert "erased from 2" in certificate and "1 other request(s) still open" in certificate


def test_an_ended_request_loses_its_contact_details_after_the_retention_period(
    invoke: Invoke, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.data.models import RequestSummaryRecord
    from lethe.settings import get_settings

    # Given a rectification with a name and corrections, carried out and ended now
    email = unique_email("scrub")
    put_items(
        "AccountsTable", [{"account_id": "acct-scrub", "email": email, "name": "Old", "last_active_at": "2026-11-01"}]
    )
    request_id = run_request(invoke, RequestType.rectification, email, corrections={"name": "New Name"})
    RequestSummaryRecord(f"REQ#{request_id}", "SUMMARY").update(actions=[RequestSummaryRecord.name.set("Ada")])
    ended = datetime.fromisoformat(summary_row(request_id)["updated_at"])
    period = timedelta(days=get_settings().request_contact_retention_days)
    assert period == timedelta(days=90)

    def retention_run(at: datetime) -> dict[str, Any]:
        event = sample_event("retention.json")
        event["time"] = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return invoke("RetentionFunction", event)  # type: ignore[no-any-return]

    # When the retention run comes a day before the period ends
    assert retention_run(ended + period - timedelta(days=1))["requests_scrubbed"] == 0
    # Then the row still holds them
    row = summary_row(request_id)
    assert row["email"] == email and row["name"] == "Ada" and row["corrections"]
    # When it comes after the period
    summary = retention_run(ended + period + timedelta(days=1))
    # Then the row holds no address, name or corrections, only PII-free fields
    assert summary["requests_scrubbed"] == 1
    row = summary_row(request_id)
    assert not {"email", "name", "details", "corrections", "pii_scrub", "pii_scrub_at"} & set(row)
    assert row["status"] == "completed" and row["type"] == "rectification" and row["subject_ref"]
    assert "New Name" not in json.dumps(row, default=str)
    # and a second run finds nothing left to do
    assert retention_run(ended + period + timedelta(days=2))["requests_scrubbed"] == 0


def test_an_erasures_pseudonym_cannot_be_recomputed_with_the_keys_lethe_keeps(invoke: Invoke) -> None:
    from lethe.aws import client
    from lethe.data.masking import RequestKey
    from lethe.keys import key_ring
    from lethe.settings import get_settings

    # Given a subject with two account rows
    email = unique_email("pseud")
    put_items(
        "AccountsTable",
        [{"account_id": f"acct-p{n}", "email": email, "name": "Ada", "last_active_at": "2026-11-01"} for n in (1, 2)],
    )
    # When the erasure runs
    request_id = run_request(invoke, RequestType.erasure, email)
    first = get_item("AccountsTable", {"account_id": "acct-p1"})["email"]  # type: ignore[index]
    second = get_item("AccountsTable", {"account_id": "acct-p2"})["email"]  # type: ignore[index]
    # Then both rows got the same pseudonym (one key for the request)
    assert first == second and first.startswith("pseud:") and email not in first
    # and no key Lethe still holds recomputes it: not the deployment's keys, in any way they are used,
    # and no request key, since none is left in the requests table
    ring = key_ring()
    stored = client("dynamodb").scan(TableName=get_settings().requests_table, ConsistentRead=True)["Items"]
    assert not [item for item in stored if "erasure_key" in item]
    for key in ring.keys.values():
        for message in (email, f"pseudonym\x00{email}", f"subject\x00{email}"):
            digest = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
            assert digest[:32] not in first
        assert RequestKey(key).pseudonym(email) != first
    assert all(ref.split(":", 1)[1][:32] not in first for ref in ring.subject_refs(email))
    # and the certificate calls what it did by its true name
    certificate = certificate_of(email)
    assert "2 anonymized" in certificate and "no one, us included, can link them back to you" in certificate
    assert summary_row(request_id)["status"] == "completed"


@pytest.mark.parametrize("fmt", [None, "json"])
def test_an_export_link_past_its_lifetime_is_refused(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, fmt: str | None
) -> None:
    from lethe.logic import exports

    # Given an access export whose link has just expired (the objects themselves are still there)
    email = unique_email("expired")
    request_id = run_request(invoke, RequestType.access, email)
    token = export_token(email)
    expires = int(token.split(".")[1])
    monkeypatch.setattr(exports.time, "time", lambda: expires + 1)
    # When it is followed, Then it is refused, whatever the format
    assert export_versions(request_id)
    assert get_export(invoke, token, fmt)["statusCode"] == 410

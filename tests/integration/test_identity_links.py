"""Identities and links, through the real worker: a subject known by email is also found in meetings,
which hold only the account id their account links to. Access, erasure, rectification and
restriction all follow the link; the export and the certificate say which identity led there; the
audit never holds the linked value; redelivery and a failed-then-retried task apply nothing twice."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.custom_inventory import demo_inventory_data, use_inventory_data
from tests.support.fulfilment import (
    audit_dump,
    drain,
    get_item,
    mails_to,
    new_request,
    put_items,
    sent_mail,
    unique_email,
)

Invoke = Callable[..., Any]


def seed_host(email: str) -> str:
    """An account and two hosted meetings (which carry no email); returns the account id."""
    account_id = f"acct-{uuid.uuid4().hex[:12]}"
    put_items(
        "AccountsTable",
        [{"account_id": account_id, "email": email, "name": "Ada Lovelace", "last_active_at": "2026-11-01T00:00:00Z"}],
    )
    put_items(
        "MeetingsTable",
        [
            {
                "meeting_id": f"mtg-{account_id}-{n}",
                "host_account_id": account_id,
                "topic": f"Engine review {n}",
                "started_at": "2026-10-0{n}T09:00:00Z".replace("{n}", str(n)),
                "participants": 4,
            }
            for n in (1, 2)
        ],
    )
    return account_id


def export_json(request_id: str) -> dict[str, Any]:
    from lethe.aws import client
    from lethe.settings import get_settings

    body = client("s3").get_object(Bucket=get_settings().export_bucket, Key=f"exports/{request_id}/export.json")
    return json.loads(body["Body"].read())  # type: ignore[no-any-return]


def export_html(request_id: str) -> str:
    from lethe.aws import client
    from lethe.settings import get_settings

    body = client("s3").get_object(Bucket=get_settings().export_bucket, Key=f"exports/{request_id}/export.html")
    return body["Body"].read().decode()  # type: ignore[no-any-return]


def run(invoke: Invoke, kind: RequestType, email: str, **extra: Any) -> str:
    """File a verified request and carry it out through the worker until the queue is empty."""
    from lethe.logic import fulfilment

    request_id = new_request(kind, email, **extra)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    return request_id


def links_rows(request_id: str) -> list[Any]:
    from lethe.data.models import RequestEventRecord
    from lethe.data.requests import pk_of

    return list(RequestEventRecord.query(pk_of(request_id), RequestEventRecord.sk.startswith("LINKS#")))


def test_access_by_email_exports_meetings_found_only_through_the_account_id(invoke: Invoke) -> None:
    from lethe.data import request_tasks
    from lethe.logic.requests import get_request

    # Given a host known by email, whose meetings hold only the account id, and another host
    email, other = unique_email("host"), unique_email("other-host")
    account_id = seed_host(email)
    other_account = seed_host(other)
    # When the access request runs
    request_id = run(invoke, RequestType.access, email)
    # Then it completed in two rounds: the email's datasets, then meetings through the account id
    request = get_request(request_id)
    assert request.status is Status.completed
    assert request.identities == (("account_id", account_id, 2),)
    assert set(request_tasks.task_results(request_id)) == {
        "accounts",
        "guest_sessions",
        "diagnostics",
        "feedback",
        "feedback_logs",
        "marketing_contacts",
        "invoices",
        "meetings@2",
    }
    # And the export holds exactly the subject's meetings, saying how they were found
    export = export_json(request_id)
    meetings = export["datasets"]["meetings"]
    assert sorted(m["meeting_id"] for m in meetings["items"]) == [f"mtg-{account_id}-1", f"mtg-{account_id}-2"]
    assert meetings["found_through"] == "found through your account id"
    assert export["datasets"]["accounts"]["found_through"] == "found through your email address"
    assert other_account not in json.dumps(export)
    assert "How we found it: found through your account id." in export_html(request_id)
    # And the audit holds neither the email nor the account id, only counts of what was learned
    dump = audit_dump()
    assert account_id not in dump and email not in dump
    assert "identities_followed" in dump


def test_erasure_masks_linked_meetings_and_certifies_nothing_remains(invoke: Invoke) -> None:
    from lethe.logic.requests import get_request

    # Given a host with two meetings found through the account id, and another host
    email, other = unique_email("erase-host"), unique_email("bystander")
    account_id = seed_host(email)
    other_account = seed_host(other)
    # When the erasure runs
    request_id = run(invoke, RequestType.erasure, email)
    # Then it completed, and each meeting was anonymized: no account id, topic redacted, date coarsened
    request = get_request(request_id)
    assert request.status is Status.completed
    for n in (1, 2):
        meeting = get_item("MeetingsTable", {"meeting_id": f"mtg-{account_id}-{n}"})
        assert meeting is not None and "host_account_id" not in meeting
        assert meeting["topic"] == "[redacted]" and meeting["started_at"].startswith("2026-10-01")
        assert meeting["participants"] == 4  # not personal: kept for usage counts
    # And the other host's meetings are untouched
    assert get_item("MeetingsTable", {"meeting_id": f"mtg-{other_account}-1"})["host_account_id"] == other_account  # type: ignore[index]
    # And the certificate says through which identity meetings were reached, and that 0 remain
    certificate = next(text for subject, text in mails_to(email) if "erasure" in subject.lower())
    line = next(line for line in certificate.splitlines() if "found through your account id" in line)
    assert "2 anonymized" in line
    # (one line per dataset, eight datasets, in both the text and the HTML part)
    assert certificate.count("Read again after the erasure: 0 remaining.") == 2 * 8
    assert (request.outcome or {})["datasets"]["meetings"]["remaining"] == 0
    # And the request keeps no way back to the person: no identities, no LINKS rows
    assert request.identities == () and request.email is None
    assert links_rows(request_id) == []
    assert account_id not in audit_dump()


def test_restriction_and_rectification_follow_the_link(invoke: Invoke) -> None:
    from lethe.data import request_tasks
    from lethe.data.datasets import RESTRICTED_ATTRIBUTE

    # Given a host with meetings
    email = unique_email("restrict-host")
    account_id = seed_host(email)
    # When a restriction runs
    restriction = run(invoke, RequestType.restriction, email)
    # Then the meetings found through the account id are restricted too
    for n in (1, 2):
        meeting = get_item("MeetingsTable", {"meeting_id": f"mtg-{account_id}-{n}"})
        assert meeting is not None and meeting[RESTRICTED_ATTRIBUTE] == restriction
    assert request_tasks.task_results(restriction)["meetings@2"]["restricted"] == 2
    # When a rectification of the name runs
    rectification = run(invoke, RequestType.rectification, email, corrections={"name": "Ada King"})
    # Then the account is corrected, and the meetings were reached (nothing in them is rectifiable)
    account = get_item("AccountsTable", {"account_id": account_id})
    assert account is not None and account["name"] == "Ada King" and account["account_id"] == account_id
    assert request_tasks.task_results(rectification)["meetings@2"]["found_through"] == "account_id"


def test_redelivered_linked_tasks_change_nothing(invoke: Invoke) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request, list_events

    # Given a linked erasure run to completion
    email = unique_email("redeliver-host")
    account_id = seed_host(email)
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    delivered: list[dict[str, Any]] = []
    assert drain(invoke, keep=delivered) == []
    meeting_before = get_item("MeetingsTable", {"meeting_id": f"mtg-{account_id}-1"})
    events_before, mails_before = len(list_events(request_id)), len(sent_mail())
    # When every message, of both rounds, is delivered again
    for event in delivered:
        assert invoke("FulfilmentWorkerFunction", event)["batchItemFailures"] == []
    # Then nothing changed, and no round was opened twice
    assert get_item("MeetingsTable", {"meeting_id": f"mtg-{account_id}-1"}) == meeting_before
    assert len(list_events(request_id)) == events_before and len(sent_mail()) == mails_before
    assert get_request(request_id).status is Status.completed
    rounds = [e for e in list_events(request_id) if e.kind == "identities_followed"]
    assert len(rounds) == 1


def test_a_task_that_failed_after_masking_still_leads_to_the_linked_meetings(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.logic import fulfilment, fulfilment_resume
    from lethe.logic.requests import get_request

    # Given an erasure whose accounts task masks the account, then fails before it is recorded
    email = unique_email("crash-host")
    account_id = seed_host(email)
    request_id = new_request(RequestType.erasure, email)
    record_done = fulfilment._record_done
    crashed: list[str] = []

    def crash_once(request_id: str, task: str, *args: Any) -> Any:
        if task == "accounts" and not crashed:
            crashed.append(task)
            raise RuntimeError("lost connection after the writes")
        return record_done(request_id, task, *args)

    monkeypatch.setattr(fulfilment, "_record_done", crash_once)
    fulfilment.start(request_id)
    failures = drain(invoke)
    assert len(failures) == 1 and json.loads(failures[0]["Body"])["dataset"] == "accounts"
    account = get_item("AccountsTable", {"account_id": account_id})
    assert account is not None and account["email"] != email  # masked: no longer found by email
    # When the task lands in the dead-letter queue and an operator retries
    fulfilment_resume.mark_failed(request_id, "accounts")
    assert get_request(request_id).status is Status.failed
    assert fulfilment_resume.retry(request_id, actor="operator") == ["accounts"]
    assert drain(invoke) == []
    # Then the link recorded before the writes still led to the meetings, which were erased
    assert get_request(request_id).status is Status.completed
    meeting = get_item("MeetingsTable", {"meeting_id": f"mtg-{account_id}-1"})
    assert meeting is not None and "host_account_id" not in meeting


# ------------------------------------------------------------------ a cycle, and odd link values


@pytest.fixture
def cyclic_inventory(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo data map, with meetings also linking back to an email (the host's contact address),
    which accounts are found by: a cycle. The contact address is rectifiable, but as a link it must
    never be rewritten."""
    data = demo_inventory_data()
    meetings = data["datasets"]["meetings"]
    meetings["fields"]["host_contact"] = {"category": "user.contact.email", "erase": "remove", "rectifiable": True}
    meetings["fields"]["room"] = {"category": "user.workplace", "erase": "redact"}
    meetings["links"] = {**meetings.get("links", {}), "email": "host_contact"}
    return use_inventory_data(data, tmp_path, monkeypatch)


def test_a_link_cycle_ends_and_each_value_is_followed_once(cyclic_inventory: Path, invoke: Invoke) -> None:
    from lethe.data import request_tasks
    from lethe.logic.requests import get_request

    # Given a person with two accounts: one under the email they write from, one under a work
    # address that only a meeting of the first account names
    email, work = unique_email("cycle"), unique_email("cycle-work")
    first = seed_host(email)
    second = seed_host(work)
    put_items(
        "MeetingsTable",
        [{"meeting_id": f"mtg-{first}-1", "host_account_id": first, "host_contact": work, "topic": "x"}],
    )
    put_items(
        "MeetingsTable",
        [{"meeting_id": f"mtg-{second}-1", "host_account_id": second, "host_contact": email, "topic": "y"}],
    )
    # When an access request runs
    request_id = run(invoke, RequestType.access, email)
    # Then it followed email -> account -> meetings -> work address -> account -> meetings, and stopped
    request = get_request(request_id)
    assert request.status is Status.completed
    assert sorted(request.identities, key=str) == sorted(
        [("account_id", first, 2), ("email", work, 3), ("account_id", second, 4)], key=str
    )
    tasks = request_tasks.task_results(request_id)
    assert {"meetings@2", "accounts@3", "meetings@4"} <= set(tasks)
    assert not any(t.endswith("@5") for t in tasks)
    export = export_json(request_id)
    assert sorted(a["account_id"] for a in export["datasets"]["accounts"]["items"]) == sorted([first, second])
    assert len(export["datasets"]["meetings"]["items"]) == 4


def test_a_link_attribute_is_never_rectified(cyclic_inventory: Path, invoke: Invoke) -> None:
    from lethe.data import request_tasks

    # Given a meeting whose contact address is a link to the host's email
    email = unique_email("rectify-link")
    account_id = seed_host(email)
    put_items(
        "MeetingsTable",
        [{"meeting_id": f"mtg-{account_id}-1", "host_account_id": account_id, "host_contact": email, "topic": "x"}],
    )
    # When a rectification asks to change it
    request_id = run(invoke, RequestType.rectification, email, corrections={"host_contact": "new@example.org"})
    # Then it is left as it was: changing how a person is found is not a correction
    meeting = get_item("MeetingsTable", {"meeting_id": f"mtg-{account_id}-1"})
    assert meeting is not None and meeting["host_contact"] == email
    assert request_tasks.task_results(request_id)["meetings@2"]["rectified"] == 0


def test_a_link_value_that_is_not_a_string_or_number_is_skipped_with_a_warning(
    cyclic_inventory: Path, invoke: Invoke, caplog: pytest.LogCaptureFixture
) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    # Given a meeting whose link attribute holds a map instead of an address
    email = unique_email("odd-link")
    account_id = seed_host(email)
    put_items(
        "MeetingsTable",
        [
            {
                "meeting_id": f"mtg-{account_id}-1",
                "host_account_id": account_id,
                "host_contact": {"primary": "secret.person@example.org"},
                "topic": "x",
            }
        ],
    )
    request_id = new_request(RequestType.access, email)
    # When an access request runs
    with caplog.at_level(logging.WARNING):
        fulfilment.start(request_id)
        assert drain(invoke) == []
    # Then the value was skipped, not followed and not a crash
    request = get_request(request_id)
    assert request.status is Status.completed
    assert request.identities == (("account_id", account_id, 2),)
    # And the warning names the dataset and attribute, never the value
    warnings = [r for r in caplog.records if "identity link skipped" in r.getMessage()]
    assert warnings
    text = "\n".join(r.getMessage() + json.dumps(getattr(r, "__dict__", {}), default=str) for r in warnings)
    assert "meetings" in text and "host_contact" in text
    assert "secret.person" not in text

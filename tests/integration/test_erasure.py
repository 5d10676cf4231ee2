"""Erasure across the demo inventory, through the real worker: each dataset ends as its on_erasure
says, held data is isolated, the subject is suppressed and told, and never appears in the audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lethe.domain import RequestType, Status
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


def seed_subject(email: str, tag: str) -> None:
    put_items(
        "AccountsTable",
        [
            {
                "account_id": f"acct-{tag}",
                "email": email,
                "name": "Ada Lovelace",
                "company": "Engines",
                "password_hash": "bcrypt$x",
                "last_ip": "203.0.113.24",
                "created_at": "2020-05-17T10:00:00Z",
                "last_active_at": "2026-11-01T00:00:00Z",
                "plan": "pro",
            }
        ],
    )
    put_items(
        "GuestSessionsTable",
        [
            {
                "session_id": f"gs-{tag}",
                "guest_email": email,
                "display_name": "Ada",
                "ip_address": "198.51.100.7",
                "customer_id": "acme-corp",
                "started_at": "2026-11-10T00:00:00Z",
            }
        ],
    )
    put_items(
        "DiagnosticsTable",
        [
            {"user_email": email, "recorded_at": f"2026-11-0{n}T00:00:00Z", "ip_address": "203.0.113.24"}
            for n in range(1, 4)
        ],
    )
    put_items(
        "FeedbackTable",
        [{"feedback_id": f"fb-{tag}", "reporter_email": email, "console_log": "chat", "submitted_at": "2026-10-01"}],
    )
    put_items("MarketingContactsTable", [{"email": email, "name": "Ada", "last_engaged_at": "2026-10-01"}])
    put_items(
        "InvoicesTable",
        [
            {
                "invoice_id": f"inv-{tag}",
                "billing_email": email,
                "billing_name": "Ada",
                "issued_at": "2025-01-01T00:00:00Z",
            }
        ],
    )


def vault_items(subject_ref: str) -> list[Any]:
    from lethe.data import vault

    return list(vault.entries_for_subject([subject_ref]))


def test_erasure_applies_each_datasets_on_erasure(invoke: Invoke) -> None:
    from lethe.keys import key_ring
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request
    from lethe.logic.suppression import is_suppressed

    # Given a subject present in every demo dataset, and a bystander
    email, other = unique_email("erase"), unique_email("bystander")
    seed_subject(email, "s1")
    seed_subject(other, "s2")
    request_id = new_request(RequestType.erasure, email)
    # When the erasure runs
    fulfilment.start(request_id)
    assert drain(invoke) == []
    # Then the request completed
    assert get_request(request_id).status is Status.completed
    # accounts: anonymized in place, unlisted attributes kept
    account = get_item("AccountsTable", {"account_id": "acct-s1"})
    assert account is not None
    assert account["email"] != email and account["email"].startswith("pseud:")
    assert account["name"] == "[redacted]" and "password_hash" not in account
    assert account["last_ip"] == "203.0.113.0" and account["created_at"] == "2020-05-01T00:00:00+00:00"
    assert account["plan"] == "pro"
    # delete datasets: gone
    assert get_item("GuestSessionsTable", {"session_id": "gs-s1"}) is None
    assert get_item("FeedbackTable", {"feedback_id": "fb-s1"}) is None
    assert get_item("MarketingContactsTable", {"email": email}) is None
    assert get_item("DiagnosticsTable", {"user_email": email, "recorded_at": "2026-11-01T00:00:00Z"}) is None
    # invoices: isolated in the vault, out of the live table, purge at the end of 7 years
    assert get_item("InvoicesTable", {"invoice_id": "inv-s1"}) is None
    isolated = vault_items(key_ring().subject_ref(email))
    assert [e.dataset for e in isolated] == ["invoices"]
    assert isolated[0].purge_at.startswith("2032-01-01")
    # the bystander is untouched
    assert get_item("AccountsTable", {"account_id": "acct-s2"})["email"] == other  # type: ignore[index]
    assert get_item("InvoicesTable", {"invoice_id": "inv-s2"}) is not None
    # suppression, certificate and the customer event
    assert is_suppressed(email)
    certificate = next(text for subject, text in mails_to(email) if "erasure" in subject.lower())
    assert "1 isolated" in certificate and "1 anonymized" in certificate and "3 deleted" in certificate
    assert "customer" in certificate
    # the subject never appears in the audit
    dump = audit_dump()
    assert email not in dump and email.split("@")[0] not in dump


def test_legal_hold_turns_deletion_into_isolation(invoke: Invoke) -> None:
    from lethe.keys import key_ring
    from lethe.logic import fulfilment, legal_holds

    # Given a subject under a legal hold
    email = unique_email("held")
    seed_subject(email, "h1")
    hold = legal_holds.place(reason="litigation 2026-17", email=email)
    request_id = new_request(RequestType.erasure, email)
    # When the erasure runs
    fulfilment.start(request_id)
    assert drain(invoke) == []
    # Then nothing was deleted or altered: every item is in the vault under the hold
    isolated = vault_items(key_ring().subject_ref(email))
    assert sorted({e.dataset for e in isolated}) == [
        "accounts",
        "diagnostics",
        "feedback",
        "guest_sessions",
        "invoices",
        "marketing_contacts",
    ]
    assert all(e.hold_ids == [hold.hold_id] for e in isolated)
    account = next(e for e in isolated if e.dataset == "accounts")
    assert account.item["email"] == email and account.item["name"] == "Ada Lovelace"
    # and the certificate says why the data was kept
    assert any("litigation 2026-17" in text for _, text in mails_to(email))


def test_redelivered_task_changes_nothing(invoke: Invoke) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request, list_events

    # Given an erasure that has run to completion
    email = unique_email("redeliver")
    seed_subject(email, "r1")
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    delivered: list[dict[str, Any]] = []
    assert drain(invoke, keep=delivered) == []
    account_before = get_item("AccountsTable", {"account_id": "acct-r1"})
    events_before = len(list_events(request_id))
    mails_before = len(sent_mail())
    # When every message is delivered again
    for event in delivered:
        result = invoke("FulfilmentWorkerFunction", event)
        assert result["batchItemFailures"] == []
    # Then nothing changed: same item, same history, no second certificate
    assert get_item("AccountsTable", {"account_id": "acct-r1"}) == account_before
    assert len(list_events(request_id)) == events_before
    assert len(sent_mail()) == mails_before
    assert get_request(request_id).status is Status.completed


def test_task_run_twice_without_the_idempotency_store_applies_nothing_twice(invoke: Invoke) -> None:
    from lethe.logic import fulfilment

    # Given an erasure task that already ran (bypassing the Powertools idempotency record)
    email = unique_email("twice")
    seed_subject(email, "t1")
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    first = fulfilment.run_task(request_id, "accounts")
    after_first = get_item("AccountsTable", {"account_id": "acct-t1"})
    # When the same task runs again
    second = fulfilment.run_task(request_id, "accounts")
    # Then the item was masked once only
    assert first["anonymized"] == 1
    assert second == {"dataset": "accounts", "skipped": "already done"}
    assert get_item("AccountsTable", {"account_id": "acct-t1"}) == after_first


def test_dead_letter_marks_failed_and_retry_resumes_only_what_is_left(
    invoke: Invoke, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic import fulfilment, fulfilment_resume
    from lethe.logic.requests import get_request

    # Given an erasure where accounts is done and invoices reached the dead-letter queue
    email = unique_email("retry")
    seed_subject(email, "f1")
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    from lethe.aws import client
    from lethe.settings import get_settings

    client("sqs").purge_queue(QueueUrl=get_settings().work_queue_url)
    fulfilment.run_task(request_id, "accounts")
    dead = sample_event("failed_task.json")
    dead["Records"][0]["body"] = json.dumps(
        {"kind": "dataset_task", "request_id": request_id, "dataset": "invoices", "attempt": 1}
    )
    assert invoke("FailedTaskFunction", dead)["batchItemFailures"] == []
    failed = get_request(request_id)
    assert failed.status is Status.failed and failed.datasets_failed == {"invoices"}
    # When an operator retries
    queued = fulfilment_resume.retry(request_id, actor="operator")
    assert "accounts" not in queued and "invoices" in queued
    assert drain(invoke) == []
    # Then the request completes
    done = get_request(request_id)
    assert done.status is Status.completed
    assert done.datasets_failed == frozenset() and "invoices" in done.datasets_done


def test_a_retry_whose_finalization_failed_leaves_finalizing_to_the_worker(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.aws import client
    from lethe.logic import fulfilment, fulfilment_resume
    from lethe.logic.requests import get_request
    from lethe.settings import get_settings

    # Given an access request whose every task is done but whose finalization never ran (a crash)
    email = unique_email("finalize")
    seed_subject(email, "fz")
    request_id = new_request(RequestType.access, email)
    fulfilment.start(request_id)
    url = get_settings().work_queue_url
    client("sqs").purge_queue(QueueUrl=url)
    with monkeypatch.context() as patched:
        patched.setattr(fulfilment, "advance", lambda request_id: None)
        for name in sorted(get_request(request_id).datasets_pending):
            fulfilment.run_task(request_id, name)
    stuck = get_request(request_id)
    assert stuck.status is Status.in_progress and not stuck.datasets_pending

    # When an operator retries it (the admin API, which may not read the vault or delete exports)
    assert fulfilment_resume.retry(request_id, actor="operator") == []

    # Then the admin call only queued the finalization: one message, for the worker
    assert get_request(request_id).status is Status.in_progress
    (message,) = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert json.loads(message["Body"]) == {
        "kind": "finalize",
        "request_id": request_id,
        "dataset": "*",
        "attempt": 1,
        "round": 1,
    }
    # And the worker finalizes it, once, however often the message comes
    assert drain(invoke) == []
    done = get_request(request_id)
    assert done.status is Status.completed
    assert len([m for m in mails_to(email) if "export" in m[0].lower() or "ready" in m[0].lower()]) == 1

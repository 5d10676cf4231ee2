"""Proof of erasure: after the writes, every dataset is read again for every identity of the subject.
A residue fails the request naming the dataset, with no certificate; an operator's retry erases
what is left and certifies only once the re-read finds nothing. What the vault keeps is stated
with its reason and date."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.custom_inventory import demo_inventory_data, use_inventory_data
from tests.support.fulfilment import drain, get_item, mails_to, new_request, put_items, unique_email

Invoke = Callable[..., Any]


@pytest.fixture(autouse=True)
def no_pause(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A GSI re-read waits between attempts; moto's indexes are current at once."""
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_ERASURE_VERIFY_DELAY_SECONDS", "0")
    get_settings.cache_clear()


def feedback(email: str, feedback_id: str) -> dict[str, Any]:
    return {
        "feedback_id": feedback_id,
        "reporter_email": email,
        "console_log": "[chat] hi",
        "submitted_at": "2026-11-01",
    }


def certificates_to(email: str) -> list[str]:
    return [text for subject, text in mails_to(email) if "erasure" in subject.lower()]


def test_an_item_written_after_the_erasure_pass_fails_the_request_naming_the_dataset(invoke: Invoke) -> None:
    from lethe.logic import fulfilment, fulfilment_resume
    from lethe.logic.requests import get_request, list_events
    from lethe.logic.suppression import is_suppressed

    # Given an erasure whose feedback pass has run
    email = unique_email("residue")
    put_items("FeedbackTable", [feedback(email, f"fb-{email}-1")])
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    assert fulfilment.run_task(request_id, "feedback")["deleted"] == 1
    # And a new feedback report of the subject arrives after it
    put_items("FeedbackTable", [feedback(email, f"fb-{email}-late")])
    # When the other datasets finish
    assert drain(invoke) == []
    # Then the request is failed, naming feedback, and no certificate was sent
    request = get_request(request_id)
    assert request.status is Status.failed
    assert request.datasets_failed == frozenset({"feedback"})
    failed = next(e for e in list_events(request_id) if e.to_status is Status.failed)
    assert failed.detail == {"residue": {"feedback": 1}}
    assert certificates_to(email) == []
    assert not is_suppressed(email)
    # When an operator retries
    assert fulfilment_resume.retry(request_id, actor="operator") == ["feedback@2"]
    assert drain(invoke) == []
    # Then what was left is erased, the re-read finds nothing, and the certificate says so
    assert get_item("FeedbackTable", {"feedback_id": f"fb-{email}-late"}) is None
    request = get_request(request_id)
    assert request.status is Status.completed
    assert (request.outcome or {})["datasets"]["feedback"] == {
        "action": "delete",
        "found": 2,
        "deleted": 2,
        "anonymized": 0,
        "isolated": 0,
        "found_through": "email",
        "remaining": 0,
    }
    (certificate,) = certificates_to(email)
    assert "2 deleted" in certificate and "Read again after the erasure: 0 remaining." in certificate


@pytest.fixture
def leaky_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo data map with the accounts' email no longer listed as a field: anonymizing an
    account masks its name and the rest, but leaves the address that finds the subject."""
    data = demo_inventory_data()
    del data["datasets"]["accounts"]["fields"]["email"]
    return use_inventory_data(data, tmp_path, monkeypatch)


def test_a_masking_that_left_the_subject_attribute_is_not_certified(leaky_inventory: Path, invoke: Invoke) -> None:
    from lethe.logic import fulfilment, fulfilment_resume
    from lethe.logic.requests import get_request

    # Given an account holder
    email = unique_email("leaky")
    put_items(
        "AccountsTable", [{"account_id": f"acct-{email}", "email": email, "name": "Ada", "last_active_at": "2026"}]
    )
    request_id = new_request(RequestType.erasure, email)
    # When the erasure runs
    fulfilment.start(request_id)
    assert drain(invoke) == []
    # Then the account was masked, but it still holds the address: the request fails naming accounts
    account = get_item("AccountsTable", {"account_id": f"acct-{email}"})
    assert account is not None and account["name"] == "[redacted]" and account["email"] == email
    request = get_request(request_id)
    assert request.status is Status.failed and request.datasets_failed == frozenset({"accounts"})
    assert certificates_to(email) == []
    # And a retry cannot certify it either while the item still holds the address
    fulfilment_resume.retry(request_id, actor="operator")
    assert drain(invoke) == []
    request = get_request(request_id)
    assert request.status is Status.failed and request.datasets_failed == frozenset({"accounts"})
    assert certificates_to(email) == []


def test_the_certificate_states_what_the_vault_keeps_why_and_until_when(invoke: Invoke) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    # Given a subject with an invoice under statutory retention (7 years from 2025-01-01)
    email = unique_email("kept")
    put_items(
        "InvoicesTable",
        [{"invoice_id": f"inv-{email}", "billing_email": email, "issued_at": "2025-01-01T00:00:00Z"}],
    )
    request_id = new_request(RequestType.erasure, email)
    # When the erasure runs
    fulfilment.start(request_id)
    assert drain(invoke) == []
    # Then nothing remains in the live table, and the kept item is named with its reason and date
    request = get_request(request_id)
    assert request.status is Status.completed
    invoices = (request.outcome or {})["datasets"]["invoices"]
    assert invoices["remaining"] == 0
    assert invoices["kept"] == [{"reason": "statutory_retention", "until": "2032-01-01", "items": 1}]
    (certificate,) = certificates_to(email)
    assert (
        "0 remaining; kept in isolation: 1 item(s) under statutory retention, until at least 2032-01-01." in certificate
    )

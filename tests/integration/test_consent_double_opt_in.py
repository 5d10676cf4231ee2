"""Double opt-in of consent contact addresses, through the real PublicApiFunction handler against moto."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lethe.data.models import ConsentRecord
from lethe.errors import ConfirmationExpired
from lethe.logic import consent
from lethe.logic.suppression import is_suppressed, suppress
from lethe_local.events import api_event
from tests.integration.test_consent_ledger import (
    admin,
    confirm,
    confirmation_tokens,
    mails_to,
    mint,
    read,
    text_of,
)

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


def new_email() -> str:
    return f"optin-{uuid.uuid4().hex[:10]}@example.com"


def test_an_address_is_pending_until_its_one_time_link_is_followed(invoke: Invoke) -> None:
    # Given a device that grants policy_updates with an address
    email = new_email()
    device, body = mint(invoke, {"policy_updates": True}, email=email)
    # Then the address is pending: kept aside, not yet the contact, and exactly one email went to it
    assert body["email_confirmation"] == "pending"
    row = ConsentRecord.get(f"SUBJ#{device.id}", "PURPOSE#policy_updates")
    assert row.contact is None and row.pending_contact == email
    (token,) = confirmation_tokens(email)
    # When the person opens the link (a GET, as a link scanner also would)
    status, page, headers = confirm(invoke, token, "GET")
    # Then a page asks to confirm, changes nothing, and cannot be framed
    assert status == 200 and '<form method="post"' in page
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert ConsentRecord.get(f"SUBJ#{device.id}", "PURPOSE#policy_updates").contact is None
    # When they press the button
    status, page, _ = confirm(invoke, token)
    # Then the address is the contact, and the history says it was confirmed
    assert status == 200 and "confirmed" in page
    assert ConsentRecord.get(f"SUBJ#{device.id}", "PURPOSE#policy_updates").contact == email
    assert read(invoke, device)[1]["purposes"]["policy_updates"]["email"] == "confirmed"
    # And the link works once
    status, page, headers = confirm(invoke, token)
    assert status == 404 and headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("token", ["", "short", "A" * 43, "A" * 42 + "=", "<script>" * 6])
def test_a_bad_confirmation_link_gets_a_page(invoke: Invoke, token: str) -> None:
    for method in ("GET", "POST"):
        status, page, headers = confirm(invoke, token, method)
        assert status == 404 and "not valid" in page and "<script>" not in page
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_a_confirmation_link_expires(invoke: Invoke) -> None:
    email = new_email()
    device, _ = mint(invoke, {"marketing_email": True}, email=email)
    (token,) = confirmation_tokens(email)
    later = datetime.now(UTC) + timedelta(hours=49)
    with pytest.raises(ConfirmationExpired):
        consent.confirm_email(token, now=later)
    assert ConsentRecord.get(f"SUBJ#{device.id}", "PURPOSE#marketing_email").contact is None


def test_the_form_cannot_flood_an_address_with_confirmations(invoke: Invoke) -> None:
    # Given one address entered on six devices from six source addresses within the hour
    email = new_email()
    answers = [mint(invoke, {"marketing_email": True}, email=email, source_ip=f"192.0.2.{n}")[1] for n in range(1, 7)]
    # Then every answer looks the same, but only three confirmation emails were sent
    assert {a["email_confirmation"] for a in answers} == {"pending"}
    assert len(mails_to(email)) == 3


def test_one_source_address_cannot_send_confirmations_to_many_addresses(invoke: Invoke) -> None:
    emails = [new_email() for _ in range(12)]
    for email in emails:
        mint(invoke, {"policy_updates": True}, email=email, source_ip="192.0.2.200")
    assert sum(len(mails_to(e)) for e in emails) == 10


def test_a_suppressed_address_gets_no_confirmation_and_the_answer_does_not_say_so(invoke: Invoke) -> None:
    email = new_email()
    suppress(email, reason="erasure", source="test")
    _, body = mint(invoke, {"marketing_email": True}, email=email)
    assert body["email_confirmation"] == "pending"
    assert mails_to(email) == []


def test_opting_out_forgets_a_pending_address(invoke: Invoke) -> None:
    email = new_email()
    device, _ = mint(invoke, {"marketing_email": True}, email=email)
    consent.withdraw_marketing(email, source="marketing_opt_out")
    row = ConsentRecord.get(f"SUBJ#{device.id}", "PURPOSE#marketing_email")
    assert row.pending_contact is None and row.pending_contact_ref is None
    # And its link now confirms nothing
    status, page, _ = confirm(invoke, confirmation_tokens(email)[0])
    assert status == 200 and "Nothing left to confirm" in page
    assert ConsentRecord.get(f"SUBJ#{device.id}", "PURPOSE#marketing_email").contact is None


def test_a_confirmation_after_sign_up_also_confirms_the_linked_account(invoke: Invoke, admin_token: str) -> None:
    # Given a device with a pending address, linked to an account before the address was confirmed
    email = new_email()
    device, _ = mint(invoke, {"policy_updates": True}, email=email)
    account = f"acct-{uuid.uuid4().hex[:12]}"
    assert admin(invoke, admin_token, "POST", f"/admin/consents/{device.id}/link", {"account_id": account})[0] == 200
    assert ConsentRecord.get(f"SUBJ#{account}", "PURPOSE#policy_updates").contact is None
    # When the address is confirmed
    assert confirm(invoke, confirmation_tokens(email)[0])[0] == 200
    # Then both the device and the account can reach it
    for subject_id in (device.id, account):
        assert ConsentRecord.get(f"SUBJ#{subject_id}", "PURPOSE#policy_updates").contact == email


def test_the_owner_of_an_address_can_stop_all_confirmation_requests_in_one_click(invoke: Invoke) -> None:
    # Given a confirmation email a stranger had sent to someone's address
    email = new_email()
    device, _ = mint(invoke, {"marketing_email": True, "policy_updates": True}, email=email)
    (message,) = mails_to(email)
    # Then it carries RFC 8058 headers and a "never again" link
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    stop = re.search(r"To never receive such a request again: (\S+)", text_of(message)).group(1)  # type: ignore[union-attr]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(stop).query)["token"][0]
    assert f"<{stop}>" in str(message["List-Unsubscribe"])
    page = invoke("PublicApiFunction", api_event("GET", "/unsubscribe", query={"token": [token]}))
    assert page["statusCode"] == 200 and "requests to confirm" in page["body"]
    # When the owner clicks it
    done = invoke("PublicApiFunction", api_event("POST", "/unsubscribe", query={"token": [token]}))
    assert done["statusCode"] == 200
    # Then the address is suppressed, the pending address is forgotten, and no confirmation is sent again
    assert is_suppressed(email)
    row = ConsentRecord.get(f"SUBJ#{device.id}", "PURPOSE#policy_updates")
    assert row.pending_contact is None
    mint(invoke, {"policy_updates": True}, email=email, source_ip="192.0.2.77")
    assert len(mails_to(email)) == 1

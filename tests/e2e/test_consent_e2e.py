"""The consent ledger, double opt-in, one-click unsubscribe and policy notices on the local stack, over HTTP."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import uuid
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import LocalStack

TIMEOUT = 60
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SECRET = "X-Lethe-Device-Secret"
CONFIRM_LINK = re.compile(r"(https?://\S+/subscriptions/confirm\?token=[A-Za-z0-9_-]{43})")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def admin(stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.admin_token}"}


def body_of(purposes: dict[str, bool], **extra: Any) -> dict[str, Any]:
    return {"purposes": purposes, "policy_version": "2026-01", "source": "banner", **extra}


def first_consent(stack: LocalStack, purposes: dict[str, bool], **extra: Any) -> tuple[str, str, dict[str, Any]]:
    """A device's first consent: Lethe mints its id and secret."""
    headers = extra.pop("headers", {})
    response = requests.post(f"{stack.base_url}/consents", json=body_of(purposes, **extra), headers=headers, timeout=60)
    assert response.status_code == 201, response.text
    answer = response.json()
    return answer["subject_id"], answer["device_secret"], answer


def record(stack: LocalStack, device: str, secret: str | None, purposes: dict[str, bool]) -> requests.Response:
    headers = {SECRET: secret} if secret is not None else {}
    body = {"subject_id": device, **body_of(purposes)}
    return requests.post(f"{stack.base_url}/consents", json=body, headers=headers, timeout=TIMEOUT)


def consent_of(stack: LocalStack, device: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{stack.base_url}/consents/{device}", headers=headers, timeout=TIMEOUT)


def history_of(stack: LocalStack, device: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = requests.get(f"{stack.base_url}/consents/{device}/history", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["changes"]  # type: ignore[no-any-return]


def mails_to(outbox: Path, address: str) -> list[Any]:
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if address in str(message["To"]):
            found.append(message)
    return found


def wait_for_mail(outbox: Path, address: str, count: int = 1, timeout: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(found := mails_to(outbox, address)) >= count:
            return found
        time.sleep(0.5)
    return mails_to(outbox, address)


def text_of(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def subscribe(stack: LocalStack, purposes: dict[str, bool], email: str) -> tuple[str, str]:
    """Mint a device with an address, and confirm it by the emailed link, as its owner would."""
    device, secret, answer = first_consent(stack, purposes, email=email)
    assert answer["email_confirmation"] == "pending"
    (mail,) = wait_for_mail(stack.outbox, email)
    link = CONFIRM_LINK.search(text_of(mail)).group(1)  # type: ignore[union-attr]
    assert requests.get(link, timeout=TIMEOUT).status_code == 200
    assert requests.post(link, timeout=TIMEOUT).status_code == 200
    return device, secret


def test_a_device_is_minted_and_only_its_secret_writes_and_reads_it(local_stack: LocalStack) -> None:
    # Given a device's first consent from Chrome
    device, secret, _ = first_consent(
        local_stack, {"strictly_necessary": True, "performance": True}, headers={"User-Agent": CHROME}
    )
    assert device.startswith("dev-") and len(secret) >= 43
    # When it withdraws performance with its secret
    assert record(local_stack, device, secret, {"performance": False}).status_code == 201
    # Then without the secret, or with a wrong one, nothing is written or read
    assert record(local_stack, device, None, {"performance": True}).status_code == 401
    assert record(local_stack, device, "guess", {"performance": True}).status_code == 403
    assert consent_of(local_stack, device, {}).status_code == 401
    assert requests.get(f"{local_stack.base_url}/consents/{device}/history", timeout=TIMEOUT).status_code == 401
    # And with it, the current state is the withdrawal and the history keeps both choices without IP hashes
    view = consent_of(local_stack, device, {SECRET: secret}).json()
    assert view["purposes"]["performance"]["granted"] is False
    changes = [c for c in history_of(local_stack, device, {SECRET: secret}) if c["purpose"] == "performance"]
    assert [c["granted"] for c in changes] == [True, False]
    assert changes[0]["user_agent_family"] == "Chrome"
    assert all(c.get("ip_hash") is None for c in changes)
    # And the operator's view keeps the IP hash, never the IP
    operator = requests.get(
        f"{local_stack.base_url}/admin/consents/{device}/history", headers=admin(local_stack), timeout=TIMEOUT
    ).json()["changes"]
    assert operator[0]["ip_hash"] and "127.0.0.1" not in json.dumps(operator)


def test_an_account_id_is_never_written_by_the_public_api(local_stack: LocalStack) -> None:
    account = unique("acct")
    assert record(local_stack, account, "anything", {"marketing_email": True}).status_code == 403
    linked = requests.post(
        f"{local_stack.base_url}/consents/{account}/link", json={"account_id": account}, timeout=TIMEOUT
    )
    assert linked.status_code in (403, 404)  # not a route of the public API
    assert (
        requests.get(f"{local_stack.base_url}/admin/consents/{account}", headers=admin(local_stack)).status_code == 404
    )


def test_the_account_service_links_a_guest_device(local_stack: LocalStack) -> None:
    # Given an account written by the account service, and a guest device's newer choices
    account = unique("acct")
    written = requests.post(
        f"{local_stack.base_url}/admin/consents",
        json={"subject_id": account, **body_of({"performance": False}, source="signup")},
        headers=admin(local_stack),
        timeout=TIMEOUT,
    )
    assert written.status_code == 201, written.text
    device, secret, _ = first_consent(local_stack, {"performance": True, "functionality": False})
    # When the guest signs up
    response = requests.post(
        f"{local_stack.base_url}/admin/consents/{device}/link",
        json={"account_id": account},
        headers=admin(local_stack),
        timeout=TIMEOUT,
    )
    # Then the account holds the device's newer choices, and both histories show the link
    assert response.status_code == 200, response.text
    assert response.json()["purposes"]["performance"]["granted"] is True
    assert any(c["note"] == f"linked to {account}" for c in history_of(local_stack, device, {SECRET: secret}))
    assert any(c["note"] == f"linked from {device}" for c in history_of(local_stack, account, admin(local_stack)))


def test_refusing_strictly_necessary_and_bad_bodies_are_4xx_json(local_stack: LocalStack) -> None:
    refusals = [
        requests.post(f"{local_stack.base_url}/consents", json=body_of({"strictly_necessary": False}), timeout=60),
        requests.post(f"{local_stack.base_url}/consents", json=body_of({"ad_tracking": True}), timeout=60),
        requests.post(f"{local_stack.base_url}/consents", data="{oops", timeout=TIMEOUT),
        requests.post(f"{local_stack.base_url}/consents", json=[1, 2], timeout=TIMEOUT),
        requests.post(f"{local_stack.base_url}/admin/policy-versions", json={}, headers=admin(local_stack), timeout=60),
        requests.post(
            f"{local_stack.base_url}/admin/unsubscribe-links", json={"email": 3}, headers=admin(local_stack), timeout=60
        ),
    ]
    for response in refusals:
        assert 400 <= response.status_code < 500, response.text
        assert "error" in response.json()


def test_double_opt_in_then_one_click_unsubscribe(local_stack: LocalStack) -> None:
    # Given a marketing subscriber who confirmed the address by the emailed link
    email = f"{unique('reader')}@example.com"
    device, secret = subscribe(local_stack, {"marketing_email": True}, email)
    view = consent_of(local_stack, device, {SECRET: secret}).json()
    assert view["purposes"]["marketing_email"]["email"] == "confirmed"
    # And the signed link the mailer would use, which holds no address
    link = requests.post(
        f"{local_stack.base_url}/admin/unsubscribe-links", json={"email": email}, headers=admin(local_stack), timeout=60
    ).json()
    assert link["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link["url"]).query)["token"][0]
    assert email.split("@")[0] not in token
    unsubscribe = f"{local_stack.base_url}/unsubscribe"
    # A forged or padded token gets a page that cannot be framed
    for forged in (token[:-4] + ("0000" if not token.endswith("0000") else "1111"), token + "="):
        for method in (requests.get, requests.post):
            refused = method(unsubscribe, params={"token": forged}, timeout=TIMEOUT)
            assert refused.status_code == 400 and refused.headers["Content-Type"].startswith("text/html")
            assert "frame-ancestors 'none'" in refused.headers["Content-Security-Policy"]
    # The page asks for confirmation and does not unsubscribe by itself
    page = requests.get(unsubscribe, params={"token": token}, timeout=TIMEOUT)
    assert page.status_code == 200 and "<form" in page.text
    suppressed = f"{local_stack.base_url}/admin/suppressions"
    lookup = {"params": {"email": email}, "headers": admin(local_stack), "timeout": TIMEOUT}
    assert requests.get(suppressed, **lookup).json() == {"suppressed": False}  # type: ignore[arg-type]
    # When the mail client posts the one-click body (RFC 8058)
    done = requests.post(
        unsubscribe,
        params={"token": token},
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    # Then the address is suppressed and marketing is withdrawn in the ledger
    assert done.status_code == 200 and done.headers["Content-Type"].startswith("text/html")
    assert requests.get(suppressed, **lookup).json() == {"suppressed": True}  # type: ignore[arg-type]
    assert consent_of(local_stack, device, {SECRET: secret}).json()["purposes"]["marketing_email"]["granted"] is False


def test_policy_notices_reach_confirmed_subscribers_once_and_carry_a_working_unsubscribe(
    local_stack: LocalStack,
) -> None:
    # Given two confirmed subscribers of policy_updates, and a stranger's address given but never confirmed
    subscribers = {f"{unique('notice')}@example.com": None for _ in range(2)}
    devices = {email: subscribe(local_stack, {"policy_updates": True}, email) for email in subscribers}
    stranger = f"{unique('stranger')}@example.com"
    first_consent(local_stack, {"policy_updates": True}, email=stranger)
    # When a new version is published
    version = unique("v")
    published = requests.post(
        f"{local_stack.base_url}/admin/policy-versions",
        json={"version": version, "summary": "We shortened how long we keep diagnostics."},
        headers=admin(local_stack),
        timeout=TIMEOUT,
    )
    assert published.status_code == 201, published.text
    # Then each subscriber receives one notice (after the confirmation), with RFC 8058 headers
    for email in subscribers:
        mails = wait_for_mail(local_stack.outbox, email, count=2)
        notices = [m for m in mails if version in str(m["Subject"])]
        assert len(notices) == 1
        assert notices[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # And the stranger got the one confirmation email and nothing else
    time.sleep(2)
    assert len(mails_to(local_stack.outbox, stranger)) == 1
    # When a subscriber follows "your choices" and unsubscribes
    email = next(iter(subscribers))
    notice = next(m for m in mails_to(local_stack.outbox, email) if version in str(m["Subject"]))
    choices = re.search(r"Your choices, or to stop these notices: (\S+)", text_of(notice)).group(1)  # type: ignore[union-attr]
    page = requests.get(choices, timeout=TIMEOUT)
    assert page.status_code == 200 and "<form" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert requests.post(choices, data="List-Unsubscribe=One-Click", timeout=TIMEOUT).status_code == 200
    # Then policy_updates is withdrawn, and the subscriber's consent reflects the new version
    device, secret = devices[email]
    view = consent_of(local_stack, device, {SECRET: secret}).json()
    assert view["purposes"]["policy_updates"]["granted"] is False
    assert view["latest_policy_version"] == version
    # And no log line carries an address (apart from the local outbox's echo of the mail itself)
    echo = ("To:", "│", "✉")
    lines = [line for line in local_stack.output().splitlines() if not line.strip().startswith(echo)]
    assert not any(e in line for line in lines for e in [*subscribers, stranger])

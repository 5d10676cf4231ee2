"""The consent ledger, one-click unsubscribe and policy notices on the local stack, over HTTP."""

from __future__ import annotations

import json
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


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def admin(stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.admin_token}"}


def record(stack: LocalStack, subject_id: str, purposes: dict[str, bool], **extra: Any) -> requests.Response:
    headers = extra.pop("headers", {})
    body = {"subject_id": subject_id, "purposes": purposes, "policy_version": "2026-01", "source": "banner", **extra}
    return requests.post(f"{stack.base_url}/consents", json=body, headers=headers, timeout=TIMEOUT)


def consent_of(stack: LocalStack, subject_id: str) -> requests.Response:
    return requests.get(f"{stack.base_url}/consents/{subject_id}", timeout=TIMEOUT)


def history_of(stack: LocalStack, subject_id: str) -> list[dict[str, Any]]:
    response = requests.get(f"{stack.base_url}/consents/{subject_id}/history", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["changes"]  # type: ignore[no-any-return]


def mails_to(outbox: Path, address: str) -> list[Any]:
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if address in str(message["To"]):
            found.append(message)
    return found


def wait_for_mail(outbox: Path, address: str, timeout: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := mails_to(outbox, address):
            return found
        time.sleep(0.5)
    return []


def test_record_read_withdraw_and_history(local_stack: LocalStack) -> None:
    # Given a device that accepts performance from Chrome
    device = unique("device")
    response = record(
        local_stack, device, {"strictly_necessary": True, "performance": True}, headers={"User-Agent": CHROME}
    )
    assert response.status_code == 201, response.text
    # When it withdraws performance
    assert record(local_stack, device, {"performance": False}).status_code == 201
    # Then the current state is the withdrawal, with policy version and time
    view = consent_of(local_stack, device).json()
    assert view["purposes"]["performance"]["granted"] is False
    assert view["purposes"]["performance"]["policy_version"] == "2026-01"
    # And the history keeps both choices, with a hashed IP and the family of the user agent only
    changes = [c for c in history_of(local_stack, device) if c["purpose"] == "performance"]
    assert [c["granted"] for c in changes] == [True, False]
    assert changes[0]["user_agent_family"] == "Chrome"
    assert changes[0]["ip_hash"] and "127.0.0.1" not in json.dumps(changes)


def test_global_privacy_control_wins_over_accept_all(local_stack: LocalStack) -> None:
    device = unique("device")
    accept_all = {"strictly_necessary": True, "performance": True, "functionality": True, "marketing_email": True}
    response = record(local_stack, device, accept_all, headers={"Sec-GPC": "1"})
    assert response.status_code == 201
    assert response.json()["purposes"]["marketing_email"]["granted"] is False
    marketing = [c for c in history_of(local_stack, device) if c["purpose"] == "marketing_email"]
    assert marketing[-1]["note"] == "gpc"


def test_guest_device_linked_to_account(local_stack: LocalStack) -> None:
    # Given a guest device's choices and a new account
    device, account = unique("device"), unique("acct")
    record(local_stack, device, {"performance": True, "functionality": False})
    # When the guest signs up
    response = requests.post(
        f"{local_stack.base_url}/consents/{device}/link", json={"account_id": account}, timeout=TIMEOUT
    )
    # Then the account holds the device's choices, and both histories show the link
    assert response.status_code == 200, response.text
    assert response.json()["purposes"]["performance"]["granted"] is True
    assert consent_of(local_stack, account).json()["purposes"]["functionality"]["granted"] is False
    assert any(c["note"] == f"linked from {device}" for c in history_of(local_stack, account))
    assert any(c["note"] == f"linked to {account}" for c in history_of(local_stack, device))


def test_refusing_strictly_necessary_and_bad_bodies_are_4xx_json(local_stack: LocalStack) -> None:
    device = unique("device")
    refusals = [
        record(local_stack, device, {"strictly_necessary": False}),
        record(local_stack, device, {"ad_tracking": True}),
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
    assert consent_of(local_stack, device).status_code == 404


def test_one_click_unsubscribe_forged_token_and_suppression(local_stack: LocalStack) -> None:
    # Given a marketing subscriber and the signed link the mailer would use
    email, device = f"{unique('reader')}@example.com", unique("device")
    record(local_stack, device, {"marketing_email": True}, email=email)
    link = requests.post(
        f"{local_stack.base_url}/admin/unsubscribe-links", json={"email": email}, headers=admin(local_stack), timeout=60
    ).json()
    assert link["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link["url"]).query)["token"][0]
    unsubscribe = f"{local_stack.base_url}/unsubscribe"
    # A forged token is refused
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert requests.get(unsubscribe, params={"token": forged}, timeout=TIMEOUT).status_code == 400
    assert requests.post(unsubscribe, params={"token": forged}, timeout=TIMEOUT).status_code == 400
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
    assert consent_of(local_stack, device).json()["purposes"]["marketing_email"]["granted"] is False


def test_policy_publish_emails_each_subscriber_once_even_when_redelivered(local_stack: LocalStack) -> None:
    # Given two subscribers of policy_updates who consented under an older version
    subscribers = {unique("device"): f"{unique('notice')}@example.com" for _ in range(2)}
    for device, email in subscribers.items():
        assert record(local_stack, device, {"policy_updates": True}, email=email).status_code == 201
    # When a new version is published
    version = unique("v")
    published = requests.post(
        f"{local_stack.base_url}/admin/policy-versions",
        json={"version": version, "summary": "We shortened how long we keep diagnostics."},
        headers=admin(local_stack),
        timeout=TIMEOUT,
    )
    assert published.status_code == 201, published.text
    # Then each subscriber receives the notice
    for email in subscribers.values():
        mails = wait_for_mail(local_stack.outbox, email)
        assert len(mails) == 1 and version in str(mails[0]["Subject"])
    # When the same fan-out message is delivered twice more
    body = json.dumps({"kind": "policy_notice", "version": version, "subscribers": list(subscribers)})
    event = {
        "Records": [
            {
                "messageId": unique("msg"),
                "receiptHandle": "redelivered",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "2"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:NotificationQueue",
                "awsRegion": "us-east-1",
            }
        ]
    }
    for _ in range(2):
        answer = requests.post(
            f"{local_stack.base_url}/_local/invoke/NotificationFunction", data=json.dumps(event), timeout=180
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"batchItemFailures": []}
    # Then nobody got a second email
    for email in subscribers.values():
        assert len(mails_to(local_stack.outbox, email)) == 1
    # And the subscribers' consents now need re-consent
    device = next(iter(subscribers))
    view = consent_of(local_stack, device).json()
    assert view["needs_reconsent"] is True and view["latest_policy_version"] == version
    # And a second publish of the same version is refused
    again = requests.post(
        f"{local_stack.base_url}/admin/policy-versions",
        json={"version": version, "summary": "again"},
        headers=admin(local_stack),
        timeout=TIMEOUT,
    )
    assert again.status_code == 409
    # And no log line carries an address (apart from the local outbox's echo of the mail itself)
    echo = ("To:", "│", "✉")
    lines = [line for line in local_stack.output().splitlines() if not line.strip().startswith(echo)]
    assert not any(email in line for line in lines for email in subscribers.values())

"""Publishing a policy version: notices fanned out through SQS, each subscriber emailed once, re-consent."""

from __future__ import annotations

import json
import logging
import random
import re
import urllib.parse
import uuid
from collections.abc import Callable
from email import message_from_string, policy
from typing import Any

import pytest
from moto.ses.models import ses_backends

from lethe.aws import client
from lethe.data.models import AuditRecord
from lethe.errors import PolicyVersionExists
from lethe.logic import policy_versions
from lethe.logic.suppression import suppress
from lethe.settings import get_settings
from lethe_local.events import api_event, sqs_event
from tests.integration.test_consent_ledger import Device, mint, read, record, subscribe
from tests.integration.test_unsubscribe_flow import admin_caller

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch, invoke: Invoke) -> Callable[..., tuple[int, Any]]:
    return admin_caller(monkeypatch, invoke)


def sent_to(address: str) -> list[Any]:
    """The policy notices sent to an address (its confirmation email is not one)."""
    messages = ses_backends["123456789012"]["us-east-1"].sent_messages
    return [
        m
        for m in messages
        if address in (getattr(m, "destinations", None) or []) and "Our privacy policy has changed" in m.raw_data
    ]


def all_sent() -> list[Any]:
    return list(ses_backends["123456789012"]["us-east-1"].sent_messages)


def drain_notifications() -> dict[str, Any]:
    """Receive every queued notice as one SQS event (as Lambda's event source mapping would)."""
    url = get_settings().notification_queue_url
    sqs = client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        messages += batch
    return sqs_event(messages, arn)


def subscriber(invoke: Invoke, version: str = "2026-01") -> tuple[Device, str]:
    """A confirmed subscriber of policy_updates (double opt-in done)."""
    email = f"sub-{uuid.uuid4().hex[:10]}@example.com"
    # Each from its own source address: confirmation emails are limited per source IP.
    ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    return subscribe(invoke, {"policy_updates": True}, email, policy_version=version, source_ip=ip), email


def test_a_publish_emails_each_subscriber_once_even_when_the_message_is_delivered_twice(
    invoke: Invoke,
    operator: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two subscribers of policy_updates, one suppressed address, and one device that refused
    (_, first), (_, second) = subscriber(invoke), subscriber(invoke)
    _, suppressed = subscriber(invoke)
    suppress(suppressed, reason="erasure", source="test")
    mint(invoke, {"policy_updates": False})
    # When a version is published
    caplog.set_level(logging.INFO)
    status, published = operator("POST", "/admin/policy-versions", body={"version": "2026-11", "summary": "Shorter"})
    # Then the two reachable, unsuppressed subscribers are queued in one batch
    assert status == 201, published
    assert published["subscribers"] == 2 and published["batches"] == 1
    # When the notification message is delivered twice
    event = drain_notifications()
    assert len(event["Records"]) == 1
    for _ in range(2):
        result = invoke("NotificationFunction", event)
        assert result == {"batchItemFailures": []}
    # Then each subscriber got exactly one notice, and the suppressed address none
    assert len(sent_to(first)) == 1 and len(sent_to(second)) == 1
    assert sent_to(suppressed) == []
    assert "2026-11" in sent_to(first)[0].raw_data and "Shorter" in sent_to(first)[0].raw_data
    # And the publish and each notice batch are audited without any address
    actions = [r.action for r in AuditRecord.query("main")]
    assert actions.count("policy_version_published") == 1 and actions.count("policy_notice_batch") == 2
    assert not any(e in str(r.attribute_values) for r in AuditRecord.query("main") for e in (first, second))
    # And no address appears in any log line (Powertools logs JSON to stdout; libraries log through logging)
    logs = caplog.text + capsys.readouterr().out
    assert "policy notices delivered" in logs
    assert not any(e.split("@")[0] in logs for e in (first, second, suppressed))


def test_a_version_is_published_once(operator: Callable[..., Any]) -> None:
    body = {"version": "2026-12", "summary": "First"}
    assert operator("POST", "/admin/policy-versions", body=body)[0] == 201
    status, answer = operator("POST", "/admin/policy-versions", body={**body, "summary": "Again"})
    assert status == 409 and answer["error"]["code"] == "policy_version_exists"
    assert policy_versions.latest().summary == "First"  # type: ignore[union-attr]


def test_consent_under_an_older_version_needs_reconsent(invoke: Invoke, operator: Callable[..., Any]) -> None:
    # Given a published version and a device that consented under it
    operator("POST", "/admin/policy-versions", body={"version": "2027-01", "summary": "One"})
    device, _ = mint(invoke, {"performance": True}, policy_version="2027-01")
    view = read(invoke, device)[1]
    assert view["needs_reconsent"] is False and view["latest_policy_version"] == "2027-01"
    # When a newer version is published
    operator("POST", "/admin/policy-versions", body={"version": "2027-06", "summary": "Two"})
    # Then the consent is reported as needing re-consent
    view = read(invoke, device)[1]
    assert view["needs_reconsent"] is True and view["purposes"]["performance"]["needs_reconsent"] is True
    # And consenting again under the new version clears it
    record(invoke, device, {"performance": True}, policy_version="2027-06")
    assert read(invoke, device)[1]["needs_reconsent"] is False


def test_a_withdrawn_subscriber_is_skipped_when_the_batch_arrives(invoke: Invoke, operator: Callable[..., Any]) -> None:
    device, email = subscriber(invoke)
    operator("POST", "/admin/policy-versions", body={"version": "2027-09", "summary": "Three"})
    record(invoke, device, {"policy_updates": False})
    assert invoke("NotificationFunction", drain_notifications()) == {"batchItemFailures": []}
    assert sent_to(email) == []


def test_the_sample_event_runs(invoke: Invoke, sample_event: Callable[[str], dict[str, Any]]) -> None:
    assert invoke("NotificationFunction", sample_event("notification.json")) == {"batchItemFailures": []}


def test_a_malformed_message_is_reported_as_a_batch_item_failure(invoke: Invoke) -> None:
    # Given a batch with one good notice and one malformed message
    good = {"kind": "policy_notice", "version": "2027-02", "subscribers": ["device-unknown-1"]}
    event = sqs_event(
        [
            {"MessageId": "m-good", "ReceiptHandle": "r1", "Body": json.dumps(good)},
            {"MessageId": "m-bad", "ReceiptHandle": "r2", "Body": json.dumps({"kind": "other"})},
        ],
        "arn:aws:sqs:us-east-1:123456789012:NotificationQueue",
    )
    # Then only the malformed one is reported back for redelivery (and, in the end, the DLQ)
    assert invoke("NotificationFunction", event) == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}


@pytest.mark.parametrize(
    "body",
    [{}, {"version": "2027-10"}, {"version": "bad version!", "summary": "x"}, {"version": "v1", "summary": ""}],
)
def test_bad_policy_bodies_are_4xx_json(operator: Callable[..., Any], body: dict[str, Any]) -> None:
    status, answer = operator("POST", "/admin/policy-versions", body=body)
    assert 400 <= status < 500 and "error" in answer


def test_many_subscribers_are_fanned_out_in_batches(
    invoke: Invoke, operator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given more subscribers than one batch holds (batches of 4 here: each subscriber costs a sign-up)
    monkeypatch.setattr(policy_versions, "NOTICE_BATCH_SIZE", 4)
    count = policy_versions.NOTICE_BATCH_SIZE + 3
    emails = [subscriber(invoke)[1] for _ in range(count)]
    status, published = operator("POST", "/admin/policy-versions", body={"version": "2028-01", "summary": "Many"})
    assert status == 201 and published["batches"] == 2
    before = len(all_sent())
    assert invoke("NotificationFunction", drain_notifications()) == {"batchItemFailures": []}
    # Then every subscriber got one notice
    assert len(all_sent()) - before == count
    assert all(len(sent_to(e)) == 1 for e in emails)


def test_a_publish_whose_fan_out_failed_can_be_completed_and_sends_once(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a subscriber, and a queue that refuses the first fan-out
    _, email = subscriber(invoke)
    real_queue = policy_versions._queue

    def refuse(_: Any) -> None:
        raise RuntimeError("queue unavailable")

    monkeypatch.setattr(policy_versions, "_queue", refuse)
    with pytest.raises(RuntimeError):
        policy_versions.publish("2029-01", "Half-way")
    # When the operator publishes the same version again, once the queue is back
    monkeypatch.setattr(policy_versions, "_queue", real_queue)
    result = policy_versions.publish("2029-01", "Half-way")
    # Then the notices are queued and the subscriber is emailed once
    assert result.batches == 1
    assert invoke("NotificationFunction", drain_notifications()) == {"batchItemFailures": []}
    assert len(sent_to(email)) == 1
    # And once completed, a further publish is a conflict, as is one with another summary
    with pytest.raises(PolicyVersionExists):
        policy_versions.publish("2029-01", "Half-way")


def test_an_unconfirmed_address_never_receives_a_notice(invoke: Invoke, operator: Callable[..., Any]) -> None:
    # Given a device that gave a stranger's address for policy_updates, never confirmed
    email = f"stranger-{uuid.uuid4().hex[:10]}@example.com"
    device, body = mint(invoke, {"policy_updates": True}, email=email)
    assert body["email_confirmation"] == "pending"
    assert read(invoke, device)[1]["purposes"]["policy_updates"]["email"] == "unconfirmed"
    # When a version is published
    status, published = operator("POST", "/admin/policy-versions", body={"version": "2030-01", "summary": "Four"})
    # Then no notice is even queued for it
    assert status == 201 and published["subscribers"] == 0 and published["batches"] == 0
    # Then the address got its one confirmation email and nothing else
    assert sent_to(email) == []
    assert len([m for m in all_sent() if email in (m.destinations or [])]) == 1


def test_the_notice_carries_a_one_click_unsubscribe_that_works(invoke: Invoke, operator: Callable[..., Any]) -> None:
    # Given a confirmed subscriber who receives a notice
    device, email = subscriber(invoke)
    operator("POST", "/admin/policy-versions", body={"version": "2030-02", "summary": "Five"})
    assert invoke("NotificationFunction", drain_notifications()) == {"batchItemFailures": []}
    (notice,) = sent_to(email)
    message = message_from_string(notice.raw_data, policy=policy.default)
    # Then it has RFC 8058 headers, and its "your choices" link is the same link, a page for a GET
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "\r\nList-Unsubscribe: <http" in notice.raw_data  # the URL as it is, not RFC 2047 encoded words
    url = re.search(r"<(https?://[^>]+/unsubscribe\?token=[^>]+)>", str(message["List-Unsubscribe"])).group(1)  # type: ignore[union-attr]
    assert f"Your choices, or to stop these notices: {url}" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["token"][0]
    page = invoke("PublicApiFunction", api_event("GET", "/unsubscribe", query={"token": [token]}))
    assert page["statusCode"] == 200 and "policy changes" in page["body"]
    # When the mail client posts the one-click body
    done = invoke(
        "PublicApiFunction",
        api_event(
            "POST",
            "/unsubscribe",
            query={"token": [token]},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body="List-Unsubscribe=One-Click",
        ),
    )
    # Then policy_updates is withdrawn, and the next publish does not reach the address
    assert done["statusCode"] == 200
    assert read(invoke, device)[1]["purposes"]["policy_updates"]["granted"] is False
    again = operator("POST", "/admin/policy-versions", body={"version": "2030-03", "summary": "Six"})
    assert again[1]["subscribers"] == 0

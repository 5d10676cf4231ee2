"""Recipients told (GDPR Art. 19), through the real worker and RecipientNoticeFunction on moto, with a
real webhook server that checks each notice's signature under the key in Secrets Manager."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.custom_inventory import demo_inventory_data, use_inventory_data
from tests.support.fulfilment import (
    admin_call,
    audit_dump,
    drain,
    new_request,
    receive,
    sent_mail,
    use_admin_token,
)
from tests.support.webhook_receiver import Receiver, webhook_receiver

Invoke = Callable[..., Any]
ADA = "ada@example.com"
PARTNER = "privacy@debugging-partner.example"
CAFEX = "CaféX Communications Limited (UK subsidiary)"
NOTICE_FUNCTION = "RecipientNoticeFunction"


def webhook_key() -> bytes:
    """The demo recipient's key, as the recipient holds it (read here, not through Lethe's code)."""
    from lethe.aws import client
    from lethe.settings import get_settings

    arn = get_settings().recipient_secrets["RecipientWebhookSecret"]
    return str(json.loads(client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])["value"]).encode()


@pytest.fixture
def demo(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[list[int]], Receiver]]:
    """The demo data map and data, with the webhook recipient pointed at a receiver of the test's own."""
    from lethe_local.seed import seed_demo_data

    monkeypatch.setenv("LETHE_RECIPIENT_NOTICE_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("LETHE_ERASURE_VERIFY_DELAY_SECONDS", "0")
    use_admin_token(monkeypatch)
    seed_demo_data(now=datetime.now(UTC))
    receivers: list[Any] = []

    def start(script: list[int]) -> Receiver:
        context = webhook_receiver(webhook_key(), script)
        receiver = context.__enter__()
        receivers.append(context)
        data = demo_inventory_data()
        for recipient in data["datasets"]["accounts"]["recipients"]:
            if isinstance(recipient, dict) and recipient["name"] == CAFEX:
                recipient["notify"]["webhook"] = receiver.url
        use_inventory_data(data, tmp_path, monkeypatch)
        return receiver

    yield start
    for context in receivers:
        context.__exit__(None, None, None)


def drain_notices(invoke: Invoke, *, rounds: int = 20) -> list[dict[str, Any]]:
    """Deliver every RecipientNoticeQueue message to the real function, as Lambda's event source mapping
    would; a failed one stays (the function backs it off by 0 s here). Returns every event delivered."""
    from lethe.settings import get_settings
    from lethe_local.events import sqs_event

    url = get_settings().recipient_notice_queue_url
    events: list[dict[str, Any]] = []
    for _ in range(rounds):
        messages = receive(url)
        if not messages:
            return events
        event = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:RecipientNoticeQueue")
        events.append(event)
        result = invoke(NOTICE_FUNCTION, event)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        from lethe.aws import client

        for message in messages:
            if message["MessageId"] not in failed:
                client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the recipient notice queue did not drain")


def erase_ada(invoke: Invoke) -> str:
    from lethe.logic import fulfilment

    request_id = new_request(RequestType.erasure, ADA)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    return request_id


def mails_to(address: str) -> list[tuple[str, str]]:
    """(subject, text) of each email to an address, read from its bytes (the bodies are 8-bit UTF-8)."""
    from email import message_from_bytes, policy

    found = []
    for raw in sent_mail():
        message = message_from_bytes(raw.raw_data.encode("utf-8", "surrogateescape"), policy=policy.default)
        if address in str(message["To"]):
            text = "\n".join(p.get_content() for p in message.walk() if p.get_content_maintype() == "text")
            found.append((str(message["Subject"]), text))
    return found


def certificate() -> str:
    return next(text for subject, text in mails_to(ADA) if "erasure" in subject.lower())


def test_an_erasure_tells_the_webhook_and_the_email_recipient_once_and_the_certificate_lists_both(
    invoke: Invoke, demo: Callable[[list[int]], Receiver]
) -> None:
    from lethe.keys import key_ring
    from lethe.logic.requests import get_request

    # Given the demo map, whose accounts go to CaféX UK (a webhook) and feedback to a partner (email)
    receiver = demo([])
    # When an erasure for ada completes
    request_id = erase_ada(invoke)
    request = get_request(request_id)
    assert request.status is Status.completed
    # Then the webhook got exactly one notice, signed with the shared key, naming no one but by HMAC
    (delivery,) = receiver.deliveries
    assert delivery.signature_ok and delivery.answered == 200
    notice = delivery.notice
    assert notice["request_id"] == request_id and notice["type"] == "erasure" and notice["dataset"] == "accounts"
    assert notice["subject_ref"] == key_ring().subject_ref(ADA)
    assert ADA not in delivery.body.decode() and "Ada" not in delivery.body.decode()
    assert delivery.headers["X-Lethe-Notice-Id"] == notice["notice_id"]
    # And the partner got exactly one email naming the request and the dataset
    (mail,) = mails_to(PARTNER)
    assert request_id in mail[0] and "Dataset: feedback" in mail[1] and ADA not in mail[1]
    # And the certificate lists both as told, with when
    text = certificate()
    assert f"- {CAFEX} (Account holders of the Meetings service (sign-up data)): told by webhook on " in text
    assert "- Third-party service providers (debugging) (Send-Feedback reports" in text
    assert "told by email on" in text and "pending" not in text
    # And the request's outcome records both as sent, and nothing is queued for retry
    told = {(r["recipient"], r["dataset"], r["state"]) for r in request.outcome["recipients"]}
    assert told == {(CAFEX, "accounts", "sent"), ("Third-party service providers (debugging)", "feedback", "sent")}
    assert drain_notices(invoke) == []
    # And the audit holds one record of each notice, naming the subject only by HMAC
    dump = audit_dump()
    assert dump.count("recipient.told") == 2 and ADA not in dump


def test_a_webhook_answering_500_is_retried_by_the_queue_and_delivered_exactly_once(
    invoke: Invoke, demo: Callable[[list[int]], Receiver]
) -> None:
    from lethe.logic.requests import get_request

    # Given a webhook that answers 500 the first time
    receiver = demo([500])
    # When the erasure completes
    request_id = erase_ada(invoke)
    # Then it completed anyway, and the certificate says the webhook notice is pending
    assert get_request(request_id).status is Status.completed
    assert f"- {CAFEX} (Account holders of the Meetings service (sign-up data)): pending" in certificate()
    assert [d.answered for d in receiver.deliveries] == [500]
    # When the queue delivers it (and the same message is delivered again, as SQS may)
    events = drain_notices(invoke)
    invoke(NOTICE_FUNCTION, events[0])
    # Then it was POSTed twice in all, the same signed body each time, and delivered exactly once
    assert [d.answered for d in receiver.deliveries] == [500, 200]
    assert len(receiver.delivered()) == 1
    assert receiver.deliveries[0].body == receiver.deliveries[1].body
    # And the operator sees it sent, after two attempts
    status, body = admin_call(
        invoke,
        "GET",
        "/admin/recipient-notices",
        resource="/admin/recipient-notices",
        query={"request_id": [request_id]},
    )
    assert status == 200
    webhook = next(n for n in body["notices"] if n["channel"] == "webhook")
    assert (webhook["state"], webhook["attempts"], webhook["last_error"]) == ("sent", 2, None)
    assert webhook["told_at"]


def test_a_recipient_that_keeps_failing_is_listed_failed_dead_lettered_and_can_be_retried(
    invoke: Invoke, demo: Callable[[list[int]], Receiver]
) -> None:
    from lethe.aws import client
    from lethe.settings import get_settings

    # Given a webhook that answers 500 to the first attempt and to every one the queue makes
    receiver = demo([500] * 6)
    request_id = erase_ada(invoke)
    # When the queue has tried it as often as the redrive policy allows
    drain_notices(invoke)
    # Then the operator sees it failed, with the reason, and the message is in the dead-letter queue
    status, body = admin_call(invoke, "GET", "/admin/recipient-notices", resource="/admin/recipient-notices")
    assert status == 200
    (failed,) = body["notices"]
    assert (failed["request_id"], failed["dataset"], failed["state"]) == (request_id, "accounts", "failed")
    assert failed["last_error"] == "HTTP 500" and failed["attempts"] == 6
    dlq = client("sqs").get_queue_url(QueueName="RecipientNoticeDLQ")["QueueUrl"]
    assert len(receive(dlq)) == 1
    assert receiver.delivered() == []
    # When the recipient is fixed and the operator retries it
    path = f"/admin/requests/{request_id}/recipient-notices/{failed['notice_id']}/retry"
    status, retried = admin_call(
        invoke,
        "POST",
        path,
        resource="/admin/requests/{id}/recipient-notices/{notice_id}/retry",
        path_parameters={"id": request_id, "notice_id": failed["notice_id"]},
    )
    assert status == 200 and retried["state"] == "pending"
    drain_notices(invoke)
    # Then it is delivered once, and no longer listed
    assert len(receiver.delivered()) == 1
    assert admin_call(invoke, "GET", "/admin/recipient-notices", resource="/admin/recipient-notices")[1] == {
        "notices": []
    }
    # And retrying a notice that was sent is a 409
    status, error = admin_call(
        invoke,
        "POST",
        path,
        resource="/admin/requests/{id}/recipient-notices/{notice_id}/retry",
        path_parameters={"id": request_id, "notice_id": failed["notice_id"]},
    )
    assert status == 409 and error["error"]["code"] == "invalid_transition"
    assert get_settings().recipient_notice_max_receives == 5


def test_a_rectification_tells_recipients_and_an_access_request_tells_no_one(
    invoke: Invoke, demo: Callable[[list[int]], Receiver]
) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    receiver = demo([])
    # When linus corrects his name (his account goes to CaféX UK), and ada asks for her data
    rectify = new_request(RequestType.rectification, "linus@example.com", corrections={"name": "Linus B. Torvalds"})
    fulfilment.start(rectify)
    access = new_request(RequestType.access, "linus@example.com")
    fulfilment.start(access)
    assert drain(invoke) == []
    # Then only the rectification was told, once, and its confirmation says so
    assert get_request(rectify).status is Status.completed and get_request(access).status is Status.completed
    assert [(d.notice["request_id"], d.notice["type"]) for d in receiver.delivered()] == [(rectify, "rectification")]
    confirmation = next(t for s, t in mails_to("linus@example.com") if "rectification" in s.lower())
    assert f"- {CAFEX} (Account holders of the Meetings service (sign-up data)): told by webhook on" in confirmation

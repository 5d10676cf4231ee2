"""The privacy inbox through the real InboundEmailFunction: a raw message stored where SES's receipt rule
stores it, and the SES event its Lambda action sends. Requests, inbox items, replies and loops."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.fulfilment import admin_call, request_rows, sent_mail, unique_email, use_admin_token

FUNCTION = "InboundEmailFunction"
PRIVACY = "privacy@example.com"


def message(sender: str | None, subject: str, text: str, *, headers: dict[str, str] | None = None) -> bytes:
    built = EmailMessage()
    if sender is not None:
        built["From"] = sender
    built["To"] = PRIVACY
    built["Subject"] = subject
    for name, value in (headers or {}).items():
        built[name] = value
    built.set_content(text)
    return built.as_bytes()


def deliver(invoke: Callable[..., Any], raw: bytes, *, source: str = "someone@example.org", verdict: str = "PASS"):
    """Store the raw message as the receipt rule's S3 action does, then invoke the function as its
    Lambda action does. Returns the function's outcome for the message and the SES message id."""
    from lethe.aws import client
    from lethe.settings import get_settings

    settings = get_settings()
    message_id = uuid.uuid4().hex
    client("s3").put_object(Bucket=settings.inbound_bucket, Key=f"{settings.inbound_prefix}{message_id}", Body=raw)
    event = {
        "Records": [
            {
                "eventSource": "aws:ses",
                "ses": {
                    "mail": {"messageId": message_id, "source": source, "timestamp": "2027-01-31T12:00:00Z"},
                    "receipt": {"spamVerdict": {"status": verdict}, "virusVerdict": {"status": "PASS"}},
                },
            }
        ]
    }
    result = invoke(FUNCTION, event)
    return result["outcomes"][0], event


def mail_to(address: str) -> list[EmailMessage]:
    found = []
    for sent in sent_mail():
        parsed = message_from_bytes(sent.raw_data.encode(), policy=policy.default)
        if parsed["To"] == address:
            found.append(parsed)
    return found


def text_of(parsed: EmailMessage) -> str:
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_a_request_by_mail_becomes_an_unverified_request_and_the_code_goes_to_the_sender_once(
    invoke: Callable[..., Any], caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    from lethe.data import requests as repository

    # Lethe's own loggers at DEBUG (botocore's DEBUG output is the SDK's wire log, not Lethe's)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="lethe")
    # Given a person writing to the privacy address
    sender = unique_email("writer")

    # When the message "please delete my data" arrives
    raw = message(f"Ann Writer <{sender}>", "My secret subject", "Hi,\nplease delete my data.\nAnn")
    outcome, event = deliver(invoke, raw, source=sender)

    # Then it is an erasure request for the sender's address, waiting for its code
    assert outcome["outcome"] == "request"
    request = repository.get(outcome["request_id"])
    assert (request.type, request.status, request.email) == (RequestType.erasure, Status.identity_unverified, sender)
    # And the code went to the sender, as from the form
    replies = mail_to(sender)
    assert len(replies) == 1
    assert replies[0]["Subject"] == "Your privacy request: verification code"
    assert re.search(r"Your verification code is \d{6}", text_of(replies[0]))
    assert outcome["request_id"] in text_of(replies[0])

    # When Lambda delivers the same SES event again, the outcome is the first one: no request, no code
    rows = request_rows()
    assert invoke(FUNCTION, event)["outcomes"][0] == outcome
    assert request_rows() == rows
    assert len(mail_to(sender)) == 1

    # And a request to unsubscribe is read as one too
    other = unique_email("unsub")
    assert deliver(invoke, message(other, "Unsubscribe", "Please unsubscribe me."), source=other)[0]["outcome"] == (
        "request"
    )

    # And nothing of the messages (addresses, names, subjects, text) was logged
    deliver(invoke, message(sender, "Secret question", "what cookies secretword"), source=sender)
    logged = caplog.text + "".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    logged += "".join(capsys.readouterr())
    for value in (sender, other, "Ann Writer", "secret subject", "Secret question", "secretword"):
        assert value not in logged
    assert "inbound message" in logged


MACHINE_MAIL = [
    ({"Auto-Submitted": "auto-replied"}, "auto-submitted"),
    ({"Auto-Submitted": "auto-generated"}, "auto-submitted"),
    ({"Precedence": "bulk"}, "bulk or auto-reply precedence"),
    ({"X-Autoreply": "yes"}, "auto-reply or list header"),
    ({"List-Id": "<news.example.org>"}, "auto-reply or list header"),
]


def test_machine_mail_never_makes_a_request_or_a_reply(invoke: Callable[..., Any]) -> None:
    rows, sent = request_rows(), len(sent_mail())
    outcomes = []
    # Auto-replies that quote our words
    for headers, _ in MACHINE_MAIL:
        sender = unique_email("vacation")
        raw = message(
            sender, "Out of office: please delete my data", "I am away. please delete my data", headers=headers
        )
        outcomes.append(deliver(invoke, raw, source=sender)[0])
    # A bounce: null envelope sender, from the mail system
    bounce = EmailMessage()
    bounce["From"] = "MAILER-DAEMON@mx.example.org"
    bounce["To"] = PRIVACY
    bounce["Subject"] = "Undelivered Mail Returned to Sender"
    bounce.set_content("delete my data")
    outcomes.append(deliver(invoke, bounce.as_bytes(), source="")[0])
    # Lethe's own mail coming back to it (a forwarding loop)
    outcomes.append(deliver(invoke, message(PRIVACY, "Your privacy request", "delete my data"), source=PRIVACY)[0])
    # A report from a mail system, and a delivery report by its content type
    outcomes.append(
        deliver(invoke, message("postmaster@mx.example.org", "x", "delete my data"), source="pm@mx.example.org")[0]
    )
    report = EmailMessage()
    report["From"] = unique_email("report")
    report.set_content("delete my data")
    report.make_mixed()
    report.set_type("multipart/report")
    outcomes.append(deliver(invoke, report.as_bytes(), source="reports@example.org")[0])
    # Spam, as SES marks it
    spam = unique_email("spam")
    outcomes.append(deliver(invoke, message(spam, "x", "delete my data"), source=spam, verdict="FAIL")[0])

    assert outcomes == [
        *({"outcome": "ignored", "reason": reason} for _, reason in MACHINE_MAIL),
        {"outcome": "ignored", "reason": "null envelope sender (a bounce)"},
        {"outcome": "ignored", "reason": "sent by Lethe's own address"},
        {"outcome": "ignored", "reason": "sent by a mail system"},
        {"outcome": "ignored", "reason": "delivery or read report"},
        {"outcome": "ignored", "reason": "spam verdict FAIL"},
    ]
    assert request_rows() == rows
    assert len(sent_mail()) == sent


def test_an_unclassified_message_goes_to_the_operator_who_files_it_once(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.data import requests as repository

    use_admin_token(monkeypatch)
    sender = unique_email("question")
    rows = request_rows()

    # When a person asks two things at once, which Lethe does not decide alone
    raw = message(sender, "A question", "Can you tell me what data you hold? Or delete it?")
    outcome, event = deliver(invoke, raw, source=sender)
    invoke(FUNCTION, event)  # delivered twice

    # Then it is an open inbox item, no request, and one acknowledgement that quotes nothing of the message
    assert (outcome["outcome"], outcome["reason"]) == ("inbox", "not classified")
    assert request_rows() == rows
    acks = mail_to(sender)
    assert [a["Subject"] for a in acks] == ["We received your message"]
    assert acks[0]["Auto-Submitted"] == "auto-replied"
    assert outcome["item_id"] in text_of(acks[0])
    assert "hold" not in text_of(acks[0])

    # And the operator sees it in the inbox
    status, page = admin_call(invoke, "GET", "/admin/inbox", resource="/admin/inbox", query={"status": ["open"]})
    assert status == 200
    mine = [item for item in page["items"] if item["item_id"] == outcome["item_id"]]
    assert len(mine) == 1
    assert (mine[0]["sender"], mine[0]["subject"], mine[0]["status"]) == (sender, "A question", "open")
    assert mine[0]["excerpt"] == "Can you tell me what data you hold? Or delete it?"

    # When the operator files it as an access request
    item_id = outcome["item_id"]
    path, resource, params = f"/admin/inbox/{item_id}/file", "/admin/inbox/{id}/file", {"id": item_id}
    status, filed = admin_call(invoke, "POST", path, resource=resource, path_parameters=params, body={"type": "access"})

    # Then the sender has an unverified access request and its code
    assert status == 200, filed
    assert filed["status"] == "filed"
    request = repository.get(filed["request_id"])
    assert (request.type, request.status, request.email) == (RequestType.access, Status.identity_unverified, sender)
    assert [m["Subject"] for m in mail_to(sender)] == [
        "We received your message",
        "Your privacy request: verification code",
    ]
    # And filing it again is refused; the listing says it is filed
    status, again = admin_call(
        invoke, "POST", path, resource=resource, path_parameters=params, body={"type": "erasure"}
    )
    assert (status, again["error"]["code"]) == (409, "invalid_transition")
    status, page = admin_call(invoke, "GET", "/admin/inbox", resource="/admin/inbox", query={"status": ["filed"]})
    assert [i["request_id"] for i in page["items"] if i["item_id"] == item_id] == [filed["request_id"]]

    # An unknown item is a 404, a type Lethe does not know a 422
    unknown = "inb_20270131T120000_0123456789abcdef"
    upath, uparams = f"/admin/inbox/{unknown}/file", {"id": unknown}
    status, body = admin_call(
        invoke, "POST", upath, resource=resource, path_parameters=uparams, body={"type": "access"}
    )
    assert (status, body["error"]["code"]) == (404, "inbox_item_not_found")
    status, _ = admin_call(invoke, "POST", upath, resource=resource, path_parameters=uparams, body={"type": "nope"})
    assert status == 422


MALFORMED = [
    # No From at all
    (b"To: privacy@example.com\r\nSubject: delete my data\r\n\r\nplease delete my data\r\n", "no usable sender"),
    # Two senders in one From
    (
        b"From: a@example.org, b@example.org\r\nTo: privacy@example.com\r\nSubject: x\r\n\r\ndelete my data\r\n",
        "no usable sender",
    ),
    # A header injection attempt: a Bcc smuggled in an encoded newline of the From's name and the Subject
    (
        b"From: =?utf-8?q?victim=0D=0ABcc:_x@evil.example?= <victim@example.org>\r\n"
        b"To: privacy@example.com\r\nSubject: =?utf-8?q?hi=0D=0ABcc:_x@evil.example?=\r\n\r\nwhat cookies?\r\n",
        "no usable sender",
    ),
    (
        b"From: plain@example.org\r\n"
        b"To: privacy@example.com\r\nSubject: =?utf-8?q?hi=0D=0ABcc:_x@evil.example?=\r\n\r\nwhat cookies?\r\n",
        "not classified",
    ),
    # Malformed MIME: a multipart without its boundary and garbage bytes; an unknown charset; not mail at all
    (
        b"From: m@example.org\r\nTo: privacy@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed\r\n\r\n\xff\xfe garbage --\r\n",
        "not classified",
    ),
    (
        b"From: m2@example.org\r\nTo: privacy@example.com\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64!!!\r\n",
        "not classified",
    ),
    (b"\x00\x01\x02 not a message at all", "no usable sender"),
]


def test_malformed_and_oversized_mail_is_kept_for_the_operator_without_a_crash(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, sent = request_rows(), sent_mail()
    reasons = [deliver(invoke, raw, source="m@example.org")[0] for raw, _ in MALFORMED]
    assert [(r["outcome"], r["reason"]) for r in reasons] == [("inbox", reason) for _, reason in MALFORMED]
    assert request_rows() == rows
    new = sent_mail()[len(sent) :]
    # Acknowledgements went to one plain address each, never to an injected one
    assert sorted({addr for reply in new for addr in reply.destinations}) == [
        "m2@example.org",
        "m@example.org",
        "plain@example.org",
    ]
    assert len(new) == 3
    for reply in new:
        parsed = message_from_bytes(reply.raw_data.encode(), policy=policy.default)
        assert parsed["Bcc"] is None
        assert "evil.example" not in reply.raw_data

    # A message larger than what the function reads is kept for the operator, its text unread
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_INBOUND_MAX_BYTES", "4096")
    get_settings.cache_clear()
    sender = unique_email("big")
    outcome, _ = deliver(
        invoke, message(sender, "delete my data", "please delete my data\n" + "x" * 10_000), source=sender
    )
    assert (outcome["outcome"], outcome["reason"]) == ("inbox", "too large to read")


def test_mail_limits_are_the_forms(invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_SUBMISSIONS_PER_EMAIL_PER_HOUR", "2")
    get_settings.cache_clear()
    sender = unique_email("flood")
    outcomes = [
        deliver(invoke, message(sender, f"delete {n}", f"please delete my data ({n})"), source=sender)[0]["outcome"]
        for n in range(3)
    ]
    assert outcomes == ["request", "request", "rate_limited"]
    assert len(mail_to(sender)) == 2

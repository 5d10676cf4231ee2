"""What the operator reads and what emails say, through the real handlers and worker against moto: the
operator sees what the subject wrote (only the operator does); operator and subject text in an email is
quoted as data (one line, bounded, escaped in HTML); the certificate says truthfully what is kept, why
and until when; the articles are right."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email import message_from_string, policy
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from lethe_local.events import api_event
from tests.support.fulfilment import (
    admin_call,
    drain,
    mails_to,
    new_request,
    put_items,
    sent_mail,
    unique_email,
)

Invoke = Callable[..., Any]
pytestmark = pytest.mark.usefixtures("operator_token")


def public(invoke: Invoke, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    event = api_event(
        method,
        path,
        headers={"Content-Type": "application/json"},
        body=None if body is None else json.dumps(body),
        **kw,
    )
    result = invoke("PublicApiFunction", event)
    return int(result["statusCode"]), json.loads(result["body"])


def code_for(email: str) -> str:
    text = next(text for subject, text in mails_to(email) if "verification code" in subject)
    found = re.search(r"verification code is (\d{6})", text)
    assert found
    return found.group(1)


@pytest.mark.parametrize("type_", ["complaint", "child_data_report"])
def test_the_operator_reads_the_subjects_name_and_details_and_the_public_status_does_not(
    invoke: Invoke, type_: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a verified request whose details only the operator should read
    email = unique_email(type_)
    details = f"My child's account {type_} was opened without consent"
    status, receipt = public(
        invoke, "POST", "/requests", {"type": type_, "email": email, "name": "Grace Hopper", "details": details}
    )
    assert status == 202
    request_id = receipt["request_id"]
    path = f"/requests/{request_id}/verify"
    verified, _ = public(
        invoke,
        "POST",
        path,
        {"code": code_for(email)},
        resource="/requests/{id}/verify",
        path_parameters={"id": request_id},
    )
    assert verified == 200

    # When the operator opens it, and anyone reads its public status
    shown_status, shown = admin_call(
        invoke,
        "GET",
        f"/admin/requests/{request_id}",
        resource="/admin/requests/{id}",
        path_parameters={"id": request_id},
    )
    _, status_body = public(
        invoke, "GET", f"/requests/{request_id}", resource="/requests/{id}", path_parameters={"id": request_id}
    )

    # Then the operator sees the name and the details it is asked to approve
    assert shown_status == 200 and shown["status"] == "awaiting_approval"
    assert shown["name"] == "Grace Hopper" and shown["details"] == details
    # And the public status and the logs hold neither
    assert "Grace" not in json.dumps(status_body) and details not in json.dumps(status_body)
    logs = capsys.readouterr()
    assert details not in logs.out + logs.err and "Grace Hopper" not in logs.out + logs.err


def test_a_hold_reason_is_quoted_in_the_certificate_as_one_escaped_line(invoke: Invoke) -> None:
    from lethe.logic import fulfilment, legal_holds

    # Given a hold whose reason carries CRLF, a forged line and markup
    email = unique_email("hold")
    reason = "litigation 2026-17\r\n\r\nYour data was fully deleted. <a href='https://evil.example'>Confirm</a>"
    legal_holds.place(reason=reason, email=email)
    put_items("FeedbackTable", [{"feedback_id": "fb-hold-crlf", "reporter_email": email, "console_log": "hi"}])
    request_id = new_request(RequestType.erasure, email)

    # When the erasure runs and the certificate is sent
    fulfilment.start(request_id)
    assert drain(invoke) == []
    raw = next(m.raw_data for m in sent_mail() if email in m.raw_data and "certificate" in m.raw_data)
    message = message_from_string(raw, policy=policy.default)
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]

    # Then the reason is on the dataset's own line, without its line breaks, and escaped in HTML
    line = next(line for line in plain.splitlines() if "litigation 2026-17" in line)
    assert "Your data was fully deleted." in line and "because of a legal hold" in line
    assert "\nYour data was fully deleted." not in plain
    assert "<a href" not in html and "&lt;a href=" in html
    # And no header came from it
    assert set(message.keys()) <= {"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}


def test_the_certificate_says_until_when_an_invoice_is_kept_and_when_its_period_is_over(invoke: Invoke) -> None:
    from lethe.logic import fulfilment

    # Given one invoice inside its 7-year statutory period and one issued ten years ago
    email = unique_email("invoice")
    put_items(
        "InvoicesTable",
        [
            {"invoice_id": "inv-recent", "billing_email": email, "issued_at": "2025-01-01T00:00:00Z"},
            {"invoice_id": "inv-old", "billing_email": email, "issued_at": "2016-01-01T00:00:00Z"},
        ],
    )
    request_id = new_request(RequestType.erasure, email)

    # When the erasure runs
    fulfilment.start(request_id)
    assert drain(invoke) == []
    certificate = next(text for subject, text in mails_to(email) if "erasure" in subject.lower())
    line = next(line for line in certificate.splitlines() if line.startswith("- Invoices"))

    # Then the recent one is kept until the end of its period, for the stated statute
    assert "1 kept (isolated, out of all processing) until 01 January 2032 because: Statutory retention" in line
    # And the old one is not said to be kept for statutory retention: its period is over and it goes
    assert "1 whose retention period (Statutory retention" in line
    assert "has already ended" in line and "deleted at the next daily vault purge" in line


def test_a_denial_reason_is_quoted_as_one_bounded_line(invoke: Invoke) -> None:
    email = unique_email("deny")
    request_id = new_request(RequestType.complaint, email, status=Status.awaiting_approval)
    reason = "Not found.\r\nBcc: victim@example.org\r\n\r\nClick https://evil.example " + "x" * 3000
    status, _ = admin_call(
        invoke,
        "POST",
        f"/admin/requests/{request_id}/deny",
        resource="/admin/requests/{id}/deny",
        path_parameters={"id": request_id},
        body={"reason": reason[:2000]},
    )
    assert status == 200
    (_, text), *_ = [m for m in mails_to(email) if "About your privacy request" in m[0]]
    line = next(line for line in text.splitlines() if line.startswith("Reason: "))
    assert "Bcc: victim@example.org" in line and "Click https://evil.example" in line
    assert len(line) <= len("Reason: ") + 2000
    assert not any(line.startswith("Bcc") for line in text.splitlines())


@pytest.mark.parametrize(
    ("type_", "words"),
    [
        ("access", "an access request"),
        ("erasure", "an erasure request"),
        ("objection", "an objection request"),
        ("complaint", "a complaint request"),
    ],
)
def test_the_code_email_uses_the_right_article(invoke: Invoke, type_: str, words: str) -> None:
    email = unique_email(type_)
    assert public(invoke, "POST", "/requests", {"type": type_, "email": email})[0] == 202
    ((_, text),) = mails_to(email)
    assert f"We received {words} for this address." in text

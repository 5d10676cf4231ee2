"""The privacy inbox on the local stack, as a newcomer uses it: mail sent with smtplib to the privacy
address on the stack's SMTP port becomes a request, and its code reaches the sender through the outbox."""

from __future__ import annotations

import re
import smtplib
import subprocess
import sys
import time
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_intake_e2e import code_from_outbox, status_of

PRIVACY = "privacy@example.com"
TIMEOUT = 30
REQUEST_ID = re.compile(r"Request id: (req_[A-Za-z0-9_-]+)")


def unique_email(tag: str) -> str:
    return f"e2e.mail.{tag}.{uuid.uuid4().hex[:10]}@example.org"


def send(port: int, sender: str, subject: str, text: str, **headers: str) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = PRIVACY
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as client:
        client.send_message(message)


def mail_to(outbox: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        if parsed["To"] == address:
            found.append(parsed)
    return found


def test_please_delete_my_data_by_mail_becomes_an_erasure_request_with_its_code(local_stack: Any) -> None:
    # Given a person who writes to the privacy address
    sender = unique_email("delete")

    # When they send "please delete my data" with smtplib to the stack's SMTP port
    send(local_stack.smtp_port, sender, "My data", "Hello,\n\nplease delete my data.\n\nThanks")

    # Then a verification code reaches them (the outbox), naming the new request
    code = code_from_outbox(local_stack.outbox, sender)
    [reply] = mail_to(local_stack.outbox, sender)
    body = reply.get_body(("plain",))
    assert body is not None
    found = REQUEST_ID.search(body.get_content())
    assert found
    request_id = found.group(1)

    # And it is an erasure request, waiting for that code, which verifies it as the form's would
    shown = status_of(local_stack.base_url, request_id)
    assert (shown["type"], shown["status"]) == ("erasure", "identity_unverified")
    verified = requests.post(f"{local_stack.base_url}/requests/{request_id}/verify", json={"code": code}, timeout=30)
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] in ("pending", "in_progress", "completed")


def test_an_auto_reply_gets_no_answer_and_an_unclear_message_reaches_the_operator(local_stack: Any) -> None:
    headers = {"Authorization": f"Bearer {local_stack.admin_token}"}
    # An out-of-office reply quoting our words: nothing happens
    robot = unique_email("robot")
    send(local_stack.smtp_port, robot, "Out of office", "please delete my data", Auto_Submitted="auto-replied")
    # A question Lethe cannot read as one request: the operator's inbox, and one acknowledgement
    person = unique_email("question")
    send(local_stack.smtp_port, person, "Cookies?", "Which cookies does your website set?")

    deadline = time.monotonic() + 15
    while not mail_to(local_stack.outbox, person) and time.monotonic() < deadline:
        time.sleep(0.2)
    [ack] = mail_to(local_stack.outbox, person)
    assert ack["Subject"] == "We received your message"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert mail_to(local_stack.outbox, robot) == []

    page = requests.get(f"{local_stack.base_url}/admin/inbox", headers=headers, timeout=TIMEOUT)
    assert page.status_code == 200
    mine = [item for item in page.json()["items"] if item["sender"] == person]
    assert [(i["subject"], i["status"]) for i in mine] == [("Cookies?", "open")]

    # The operator files it from the CLI as an access request: the sender gets the code
    env = {"LETHE_API_URL": local_stack.base_url, "LETHE_ADMIN_TOKEN": local_stack.admin_token, "PATH": "/usr/bin:/bin"}
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "lethe"), "inbox", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert mine[0]["item_id"] in listed.stdout
    filed = subprocess.run(
        [str(Path(sys.executable).parent / "lethe"), "inbox", "file", mine[0]["item_id"], "--type", "access", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert filed.returncode == 0, filed.stderr
    assert '"status": "filed"' in filed.stdout
    code_from_outbox(local_stack.outbox, person)


def test_the_smtp_server_refuses_other_recipients_and_oversized_mail(local_stack: Any) -> None:
    sender = unique_email("refused")
    with smtplib.SMTP("127.0.0.1", local_stack.smtp_port, timeout=TIMEOUT) as client:
        client.ehlo()
        limit = int(client.esmtp_features["size"])
        # Mail for anyone but the privacy address is refused at RCPT
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(sender, ["someone.else@example.com"], b"Subject: x\r\n\r\nhello\r\n")
        assert refused.value.recipients["someone.else@example.com"][0] == 550
        # A message larger than the announced SIZE is refused before its data is taken
        with pytest.raises(smtplib.SMTPSenderRefused) as too_big:
            client.sendmail(sender, [PRIVACY], b"Subject: big\r\n\r\n" + b"x" * (limit + 1))
        assert too_big.value.smtp_code == 552
    assert mail_to(local_stack.outbox, sender) == []

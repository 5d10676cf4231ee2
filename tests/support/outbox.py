"""The local stack's outbox as a subject reads it, and a request filed and verified over HTTP the same way."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import requests

TIMEOUT = 60
CODE = re.compile(r"code is (\d{6})")


def mail_texts(outbox: Path, address: str) -> list[str]:
    """The plain-text bodies of every email sent to `address`, oldest first."""
    texts = []
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] == address:
            plain = message.get_body(("plain",))
            texts.append(plain.get_content() if plain is not None else "")
    return texts


def wait_for_mail(outbox: Path, address: str, needle: str) -> str:
    """The newest email to `address` holding `needle`, once one has arrived."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = [text for text in mail_texts(outbox, address) if needle in text]
        if found:
            return found[-1]
        time.sleep(0.3)
    raise AssertionError(f"no email with {needle!r} reached {address}")


def file_and_verify(stack: Any, kind: str, address: str) -> str:
    """A request filed through the public API and verified with the emailed code; returns its id."""
    answer = requests.post(
        f"{stack.base_url}/requests", json={"type": kind, "email": address, "regulation": "gdpr"}, timeout=TIMEOUT
    )
    assert answer.status_code == 202, answer.text
    request_id = str(answer.json()["request_id"])
    code = CODE.search(wait_for_mail(stack.outbox, address, request_id))
    assert code is not None
    verified = requests.post(
        f"{stack.base_url}/requests/{request_id}/verify", json={"code": code.group(1)}, timeout=TIMEOUT
    )
    assert verified.status_code == 200, verified.text
    return request_id


def wait_completed(stack: Any, request_id: str) -> None:
    """Until the request's public status is completed; a failed or denied one fails at once."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = requests.get(f"{stack.base_url}/requests/{request_id}", timeout=TIMEOUT).json()["status"]
        if status == "completed":
            return
        assert status not in ("failed", "denied"), status
        time.sleep(0.5)
    raise AssertionError(f"{request_id} did not complete")

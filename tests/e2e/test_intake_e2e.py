"""Intake over HTTP against the local stack, as a newcomer would use it with curl: file a request,
read the code in the outbox, verify, watch the status; and every 4xx the public API promises.

Each test files at most two requests: the stack's per-IP limit is shared by the whole e2e session."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import requests

from lethe.logic import deadlines

TIMEOUT = 30
OUTBOX_WAIT_SECONDS = 15
CODE = re.compile(r"verification code is (\d{6})")


def unique_email(tag: str) -> str:
    return f"e2e.{tag}.{uuid.uuid4().hex[:10]}@example.org"


def code_from_outbox(outbox: Path, email: str) -> str:
    """The code of the newest .eml in the outbox addressed to `email` (waits for the file to appear)."""
    deadline = time.monotonic() + OUTBOX_WAIT_SECONDS
    while True:
        for path in sorted(outbox.glob("*.eml"), reverse=True) if outbox.exists() else []:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == email:
                plain = message.get_body(("plain",))
                found = CODE.search(plain.get_content() if plain is not None else "")
                assert found, f"{path.name} carries no code"
                return found.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no email to this address in {outbox}")
        time.sleep(0.2)


def file_request(base_url: str, email: str, type_: str, **extra: Any) -> dict[str, Any]:
    response = requests.post(f"{base_url}/requests", json={"type": type_, "email": email, **extra}, timeout=TIMEOUT)
    assert response.status_code == 202, response.text
    return response.json()


def status_of(base_url: str, request_id: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/requests/{request_id}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code and body["error"]["message"]


def assert_due_at_follows(shown: dict[str, Any], regulation: str | None) -> None:
    created, due = datetime.fromisoformat(shown["created_at"]), datetime.fromisoformat(shown["due_at"])
    assert due == deadlines.due_at(regulation, created)


def test_a_newcomer_files_verifies_and_sees_the_status_change(local_stack: Any) -> None:
    base = local_stack.base_url
    # Given a new access request under the GDPR
    email = unique_email("newcomer")
    receipt = file_request(base, email, "access", regulation="gdpr")
    assert receipt["status"] == "identity_unverified"
    before = status_of(base, receipt["request_id"])
    assert before["status"] == "identity_unverified"
    assert_due_at_follows(before, "gdpr")
    assert email not in json.dumps(before)

    # When the code from the outbox is sent back
    code = code_from_outbox(local_stack.outbox, email)
    response = requests.post(f"{base}/requests/{receipt['request_id']}/verify", json={"code": code}, timeout=TIMEOUT)

    # Then the request has left identity_unverified for good
    assert response.status_code == 200, response.text
    after = status_of(base, receipt["request_id"])
    assert after["status"] in {"pending", "in_progress", "completed"}
    assert set(after) == {"request_id", "type", "status", "regulation", "created_at", "due_at", "extended"}


def test_wrong_codes_then_a_lockout_after_five(local_stack: Any) -> None:
    base = local_stack.base_url
    email = unique_email("lockout")
    receipt = file_request(base, email, "erasure", regulation="ccpa")
    assert_due_at_follows(status_of(base, receipt["request_id"]), "ccpa")
    code = code_from_outbox(local_stack.outbox, email)
    url = f"{base}/requests/{receipt['request_id']}/verify"

    for _ in range(4):
        assert_error(requests.post(url, json={"code": wrong(code)}, timeout=TIMEOUT), 400, "verification_failed")
    assert_error(requests.post(url, json={"code": wrong(code)}, timeout=TIMEOUT), 423, "verification_locked")
    # Even the right code is refused now, and the request is closed
    assert_error(requests.post(url, json={"code": code}, timeout=TIMEOUT), 423, "verification_locked")
    assert status_of(base, receipt["request_id"])["status"] == "expired"


def test_cancel_with_the_code(local_stack: Any) -> None:
    base = local_stack.base_url
    email = unique_email("cancel")
    receipt = file_request(base, email, "complaint", regulation="dpf")
    assert_due_at_follows(status_of(base, receipt["request_id"]), "dpf")
    code = code_from_outbox(local_stack.outbox, email)
    url = f"{base}/requests/{receipt['request_id']}"

    assert_error(requests.delete(url, json={"code": wrong(code)}, timeout=TIMEOUT), 400, "verification_failed")
    response = requests.delete(url, json={"code": code}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert status_of(base, receipt["request_id"])["status"] == "canceled"
    assert_error(requests.delete(url, json={"code": code}, timeout=TIMEOUT), 409, "invalid_transition")


def test_unknown_ids_and_bad_bodies_get_their_4xx(local_stack: Any) -> None:
    base = local_stack.base_url
    unknown = "req_" + uuid.uuid4().hex[:22]
    assert_error(requests.get(f"{base}/requests/{unknown}", timeout=TIMEOUT), 404, "request_not_found")
    assert_error(
        requests.post(f"{base}/requests/{unknown}/verify", json={"code": "123456"}, timeout=TIMEOUT),
        404,
        "request_not_found",
    )
    headers = {"Content-Type": "application/json"}
    assert_error(
        requests.post(f"{base}/requests", data='{"type": "access", "email": ', headers=headers, timeout=TIMEOUT),
        400,
        "malformed_json",
    )
    assert_error(
        requests.post(f"{base}/requests", json={"type": 7, "email": ["x"]}, timeout=TIMEOUT), 422, "invalid_request"
    )
    big = {"type": "access", "email": unique_email("big"), "details": "x" * 40_000}
    assert_error(requests.post(f"{base}/requests", json=big, timeout=TIMEOUT), 413, "payload_too_large")


def test_the_default_and_uk_deadlines(local_stack: Any) -> None:
    base = local_stack.base_url
    default = file_request(base, unique_email("default"), "objection")
    assert_due_at_follows(status_of(base, default["request_id"]), None)
    uk = file_request(base, unique_email("uk"), "portability", regulation="uk-gdpr")
    assert_due_at_follows(status_of(base, uk["request_id"]), "uk-gdpr")

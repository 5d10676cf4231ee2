"""Submission limits and idempotency through the real PublicApiFunction handler against moto: a closed
request is never handed to a new submission, and someone else's submissions for an address can neither
lock its owner out of the form nor flood the owner's mailbox."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from lethe_local.events import api_event
from tests.support.fulfilment import mails_to, unique_email

Invoke = Callable[..., Any]
ATTACKER, OWNER = "203.0.113.66", "198.51.100.20"


def post(
    invoke: Invoke, path: str, body: dict[str, Any], *, ip: str, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **(headers or {})}
    event = api_event("POST", path, headers=headers, body=json.dumps(body), source_ip=ip, **kw)
    result = invoke("PublicApiFunction", event)
    return int(result["statusCode"]), json.loads(result["body"])


def codes(email: str) -> list[str]:
    return [m.group(1) for _, text in mails_to(email) if (m := re.search(r"verification code is (\d{6})", text))]


def verify(invoke: Invoke, request_id: str, code: str, *, ip: str) -> int:
    path = f"/requests/{request_id}/verify"
    return post(
        invoke, path, {"code": code}, ip=ip, resource="/requests/{id}/verify", path_parameters={"id": request_id}
    )[0]


def test_after_a_lockout_the_same_body_is_a_new_request_with_a_new_code(aws: Any, invoke: Invoke) -> None:
    # Given a request closed after five wrong codes
    email = unique_email("locked")
    body = {"type": "access", "email": email}
    status, first = post(invoke, "/requests", body, ip=OWNER)
    assert status == 202
    (code,) = codes(email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert [verify(invoke, first["request_id"], wrong, ip=OWNER) for _ in range(5)][-1] == 423

    # When the same body is submitted again, and retried
    status, again = post(invoke, "/requests", body, ip=OWNER)
    status_retry, retried = post(invoke, "/requests", body, ip=OWNER)

    # Then it is a new request, with a new code that verifies it; its retry is answered with it, once
    assert status == status_retry == 202
    assert again["request_id"] != first["request_id"] and retried == again
    assert len(codes(email)) == 2
    assert verify(invoke, again["request_id"], codes(email)[-1], ip=OWNER) == 200


def test_a_verified_request_is_not_handed_to_the_next_identical_submission(aws: Any, invoke: Invoke) -> None:
    email = unique_email("verified")
    body = {"type": "complaint", "email": email, "details": "cookies"}
    _, first = post(invoke, "/requests", body, ip=OWNER)
    assert verify(invoke, first["request_id"], codes(email)[0], ip=OWNER) == 200
    _, second = post(invoke, "/requests", body, ip=OWNER)
    assert second["request_id"] != first["request_id"] and second["status"] == "identity_unverified"


def test_someone_elses_submissions_neither_lock_the_owner_out_nor_flood_the_mailbox(
    aws: Any, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.settings import get_settings

    settings = get_settings()
    per_source, ceiling = settings.submissions_per_email_per_hour, settings.codes_per_email_per_hour
    email = unique_email("victim")

    # Given an attacker who files requests for the owner's address from one source until refused
    answers = [
        post(invoke, "/requests", {"type": "access", "email": email, "details": f"n{n}"}, ip=ATTACKER)[0]
        for n in range(per_source + 3)
    ]
    assert answers == [202] * per_source + [429] * 3

    # When the owner files their own request from their own source
    status, mine = post(invoke, "/requests", {"type": "erasure", "email": email}, ip=OWNER)

    # Then it is accepted, its code arrives and verifies it
    assert status == 202, mine
    assert verify(invoke, mine["request_id"], codes(email)[-1], ip=OWNER) == 200
    # And the mailbox got at most the per-source allowance from the attacker, plus the owner's own code
    assert len(codes(email)) == per_source + 1

    # And from many sources together, no more than the ceiling of codes reach the address in an hour
    for n in range(ceiling):
        post(invoke, "/requests", {"type": "access", "email": email, "details": f"m{n}"}, ip=f"192.0.2.{n + 1}")
    assert len(codes(email)) == ceiling


def test_a_submission_with_its_own_key_is_shared_with_no_one_at_the_same_address(aws: Any, invoke: Invoke) -> None:
    from tests.support.fulfilment import request_rows

    # Given the owner's form submission, which carries a key of its own, from a shared network address
    email = unique_email("shared-ip")
    body = {"type": "erasure", "email": email}
    key = {"Idempotency-Key": "form-3f9c2a7d41b8e6f0"}
    status, owners = post(invoke, "/requests", body, ip=OWNER, headers=key)
    assert status == 202

    # When someone else on that address sends the same body without the key, and the owner's form retries
    status_other, others = post(invoke, "/requests", body, ip=OWNER)
    status_retry, retried = post(invoke, "/requests", body, ip=OWNER, headers=key)

    # Then the stranger gets a request of their own, never the owner's id; the owner's retry gets the owner's
    assert status_other == status_retry == 202
    assert others["request_id"] != owners["request_id"]
    assert retried == owners

    # And a key that is not 16 to 64 URL-safe characters is refused before anything is written
    rows = request_rows()
    status_bad, error = post(invoke, "/requests", body, ip=OWNER, headers={"Idempotency-Key": "x y"})
    assert status_bad == 400 and error["error"]["code"] == "invalid_idempotency_key"
    assert request_rows() == rows

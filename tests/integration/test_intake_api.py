"""Intake through the PublicApiFunction handler against moto: submission, verification, status,
cancellation, abuse limits and every 4xx the public API promises."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest

from lethe_local.events import api_event

FN = "PublicApiFunction"
ACCOUNT, REGION = "123456789012", "us-east-1"
ERROR_KEYS = {"code", "message"}


# --------------------------------------------------------------------------------------------- helpers
def unique_email(tag: str = "subject") -> str:
    return f"{tag}.{uuid.uuid4().hex[:10]}@example.org"


def call(
    invoke: Callable[..., Any],
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: str | None = None,
    source_ip: str = "198.51.100.7",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One HTTP call through the real handler; returns status, JSON body and headers."""
    resource, params = path, None
    match = re.fullmatch(r"/requests/([^/]+)(/verify)?", path)
    if match:
        resource, params = "/requests/{id}" + (match.group(2) or ""), {"id": match.group(1)}
    payload = raw if raw is not None else (None if body is None else json.dumps(body))
    event = api_event(
        method,
        path,
        resource=resource,
        path_parameters=params,
        headers={"Content-Type": "application/json"},
        body=payload,
        source_ip=source_ip,
    )
    result = invoke(FN, event)
    text = result.get("body") or "{}"
    headers = dict(result.get("headers") or {})
    headers.update({k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items() if v})
    return result["statusCode"], json.loads(text), headers


def sent_messages() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def code_sent_to(email: str) -> str:
    """The verification code of the last message sent to `email` (read from moto's SES backend)."""
    for message in reversed(sent_messages()):
        parsed = message_from_bytes(message.raw_data.encode(), policy=policy.default)
        if parsed["To"] == email:
            plain = parsed.get_body(("plain",))
            assert plain is not None
            found = re.search(r"verification code is (\d{6})", plain.get_content())
            assert found, "the email carries no code"
            return found.group(1)
    raise AssertionError("no email was sent to this address")


def submit(invoke: Callable[..., Any], email: str, type_: str = "access", **extra: Any) -> dict[str, Any]:
    status, body, _ = call(invoke, "POST", "/requests", {"type": type_, "email": email, **extra})
    assert status == 202, body
    return body


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def assert_error(body: dict[str, Any], code: str | None = None) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert all(isinstance(v, str) and v for v in body["error"].values())
    if code is not None:
        assert body["error"]["code"] == code


# --------------------------------------------------------------------------------------------- happy paths
def test_access_request_is_accepted_verified_and_becomes_pending(invoke: Callable[..., Any]) -> None:
    # Given a new access request
    email = unique_email()
    receipt = submit(invoke, email, "access", regulation="gdpr", name="Ada")
    assert receipt["status"] == "identity_unverified"
    assert receipt["request_id"].startswith("req_") and len(receipt["request_id"]) >= 20

    # When the subject verifies with the emailed code
    status, body, _ = call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code_sent_to(email)})

    # Then the request moves on to pending and GET shows it without personal data
    assert status == 200, body
    assert body["status"] in {"pending", "in_progress"}
    status, shown, _ = call(invoke, "GET", f"/requests/{receipt['request_id']}")
    assert status == 200
    assert set(shown) == {"request_id", "type", "status", "regulation", "created_at", "due_at", "extended"}
    assert shown["status"] == body["status"] and shown["regulation"] == "gdpr"
    assert email not in json.dumps(shown) and "Ada" not in json.dumps(shown)


@pytest.mark.parametrize("type_", ["rectification", "child_data_report", "complaint"])
def test_types_that_need_a_person_await_approval_after_verification(invoke: Callable[..., Any], type_: str) -> None:
    # Given a request of a type that needs approval
    email = unique_email(type_)
    extra = {"corrections": {"name": "Ada Lovelace"}} if type_ == "rectification" else {}
    receipt = submit(invoke, email, type_, **extra)

    # When it is verified
    status, body, _ = call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code_sent_to(email)})

    # Then it waits for an operator
    assert status == 200, body
    assert body["status"] == "awaiting_approval"


def test_every_transition_writes_an_event_row_and_an_audit_record_without_the_email(
    invoke: Callable[..., Any],
) -> None:
    # Given a verified request
    from lethe.data.models import AuditRecord
    from lethe.keys import key_ring
    from lethe.logic.requests import list_events

    email = unique_email("audit")
    receipt = submit(invoke, email, "complaint", details="about cookies")
    call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code_sent_to(email)})

    # Then its history holds the creation and the transition
    kinds = [(e.kind, e.to_status) for e in list_events(receipt["request_id"])]
    assert kinds == [("created", "identity_unverified"), ("transition", "awaiting_approval")]
    # And the audit names the subject only by its HMAC reference
    records = [r for r in AuditRecord.query("main") if r.request_id == receipt["request_id"]]
    assert [r.action for r in records] == ["request.received", "request.awaiting_approval"]
    assert {r.subject_ref for r in records} == {key_ring().subject_ref(email)}
    assert email not in json.dumps([r.attribute_values for r in records], default=str)
    # And the chain still verifies
    from lethe.data import audit

    assert audit.verify().ok


def test_email_is_normalized_before_it_is_stored(invoke: Callable[..., Any]) -> None:
    # Given an address with capitals and spaces
    from lethe.keys import key_ring
    from lethe.logic.requests import get_request

    email = unique_email("MiXed")
    receipt = submit(invoke, f"  {email.upper()} ")

    # Then the stored request holds the normalized address and its reference
    stored = get_request(receipt["request_id"])
    assert stored.email == email.lower()
    assert stored.subject_ref == key_ring().subject_ref(email)


# --------------------------------------------------------------------------------------------- verification failures
def test_a_wrong_code_is_refused_and_the_request_stays_unverified(invoke: Callable[..., Any]) -> None:
    email = unique_email("wrong")
    receipt = submit(invoke, email)
    status, body, _ = call(
        invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": wrong(code_sent_to(email))}
    )
    assert status == 400
    assert_error(body, "verification_failed")
    assert "4 attempt(s) left" in body["error"]["message"]
    _, shown, _ = call(invoke, "GET", f"/requests/{receipt['request_id']}")
    assert shown["status"] == "identity_unverified"


def test_five_wrong_codes_close_the_request_and_the_right_code_no_longer_works(invoke: Callable[..., Any]) -> None:
    # Given a request and its code
    email = unique_email("lockout")
    receipt = submit(invoke, email)
    code = code_sent_to(email)
    path = f"/requests/{receipt['request_id']}/verify"

    # When five wrong codes are tried
    answers = [call(invoke, "POST", path, {"code": wrong(code)})[0] for _ in range(5)]

    # Then the fifth closes the request and even the right code is refused
    assert answers == [400, 400, 400, 400, 423]
    status, body, _ = call(invoke, "POST", path, {"code": code})
    assert status == 423
    assert_error(body, "verification_locked")
    _, shown, _ = call(invoke, "GET", f"/requests/{receipt['request_id']}")
    assert shown["status"] == "expired"


def test_a_code_older_than_fifteen_minutes_has_expired(invoke: Callable[..., Any]) -> None:
    # Given a request whose code was sent 16 minutes ago
    from lethe.errors import VerificationExpired
    from lethe.logic import intake

    email = unique_email("late")
    receipt = submit(invoke, email)
    code = code_sent_to(email)
    later = datetime.now(UTC) + timedelta(minutes=16)

    # When it is used now, it is refused as expired
    with pytest.raises(VerificationExpired):
        intake.verify(receipt["request_id"], code, now=later)
    # And through the API (14 minutes is still in time)
    assert intake.verify(receipt["request_id"], code, now=datetime.now(UTC) + timedelta(minutes=14)).status in {
        "pending",
        "in_progress",
    }


def test_an_expired_code_answers_410_through_the_api(
    invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a code TTL of zero minutes (every code is already expired)
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_VERIFICATION_CODE_TTL_MINUTES", "0")
    get_settings.cache_clear()
    email = unique_email("ttl")
    receipt = submit(invoke, email)
    status, body, _ = call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code_sent_to(email)})
    assert status == 410
    assert_error(body, "verification_expired")


def test_verifying_twice_is_a_conflict(invoke: Callable[..., Any]) -> None:
    email = unique_email("twice")
    receipt = submit(invoke, email, "complaint")
    code = code_sent_to(email)
    assert call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code})[0] == 200
    status, body, _ = call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code})
    assert status == 409
    assert_error(body, "invalid_transition")


@pytest.mark.parametrize("request_id", ["req_" + "A" * 22, "nope", "req_" + "x" * 100])
def test_unknown_ids_are_404_for_every_route(invoke: Callable[..., Any], request_id: str) -> None:
    for method, path, body in (
        ("GET", f"/requests/{request_id}", None),
        ("POST", f"/requests/{request_id}/verify", {"code": "123456"}),
        ("DELETE", f"/requests/{request_id}", {"code": "123456"}),
    ):
        status, answer, _ = call(invoke, method, path, body)
        assert status == 404, (method, answer)
        assert_error(answer, "request_not_found")


# --------------------------------------------------------------------------------------------- cancellation
def test_cancel_with_the_code_while_unverified(invoke: Callable[..., Any]) -> None:
    email = unique_email("cancel")
    receipt = submit(invoke, email)
    status, body, _ = call(invoke, "DELETE", f"/requests/{receipt['request_id']}", {"code": code_sent_to(email)})
    assert status == 200, body
    assert body["status"] == "canceled"


def test_cancel_while_awaiting_approval_and_not_after(invoke: Callable[..., Any]) -> None:
    # Given a verified complaint awaiting approval
    email = unique_email("cancel2")
    receipt = submit(invoke, email, "complaint")
    code = code_sent_to(email)
    call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code})

    # When a wrong code is sent, nothing changes; with the right one it is canceled
    status, body, _ = call(invoke, "DELETE", f"/requests/{receipt['request_id']}", {"code": wrong(code)})
    assert status == 400
    assert_error(body, "verification_failed")
    status, body, _ = call(invoke, "DELETE", f"/requests/{receipt['request_id']}", {"code": code})
    assert (status, body["status"]) == (200, "canceled")

    # Then a second cancel is a conflict
    status, body, _ = call(invoke, "DELETE", f"/requests/{receipt['request_id']}", {"code": code})
    assert status == 409
    assert_error(body, "invalid_transition")


# --------------------------------------------------------------------------------------------- bad input
def test_malformed_json_is_400(invoke: Callable[..., Any]) -> None:
    status, body, _ = call(invoke, "POST", "/requests", raw='{"type": "access", "email": ')
    assert status == 400
    assert_error(body, "malformed_json")


@pytest.mark.parametrize(
    "payload",
    [
        {"type": 5, "email": "a@example.org"},
        {"type": "access", "email": ["a@example.org"]},
        {"type": "teleport", "email": "a@example.org"},
        {"type": "access", "email": "not-an-email"},
        {"type": "access"},
        {"type": "access", "email": "a@example.org", "regulation": "hipaa"},
        {"type": "access", "email": "a@example.org", "unexpected": 1},
        {"type": "rectification", "email": "a@example.org"},
        {"type": "access", "email": "a@example.org", "corrections": {"name": "x"}},
        {"type": "access", "email": "a@example.org", "name": "n" * 201},
        [],
        "access",
    ],
)
def test_wrong_types_are_422_with_our_error_schema(invoke: Callable[..., Any], payload: Any) -> None:
    status, body, _ = call(invoke, "POST", "/requests", payload)
    assert status == 422, body
    assert_error(body, "invalid_request")


def test_a_code_that_is_not_six_digits_is_422(invoke: Callable[..., Any]) -> None:
    receipt = submit(invoke, unique_email("fmt"))
    status, body, _ = call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": 123456})
    assert status == 422
    assert_error(body, "invalid_request")


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"type": "access", "email": "a@example.org", "details": "x" * 20_000}),
        json.dumps({"type": "access", "email": "a@example.org"}) + " " * 20_000,
    ],
    ids=["invalid-and-large", "valid-but-padded"],
)
def test_oversized_bodies_are_413(invoke: Callable[..., Any], raw: str) -> None:
    status, body, _ = call(invoke, "POST", "/requests", raw=raw)
    assert status == 413
    assert_error(body, "payload_too_large")


# --------------------------------------------------------------------------------------------- deadlines
@pytest.mark.parametrize(
    ("regulation", "days_low", "days_high"),
    [("gdpr", 28, 31), ("uk-gdpr", 28, 31), ("ccpa", 45, 45), ("dpf", 45, 45), (None, 30, 30)],
)
def test_every_regulation_gets_its_due_at(
    invoke: Callable[..., Any], regulation: str | None, days_low: int, days_high: int
) -> None:
    from lethe.logic import deadlines
    from lethe.logic.requests import get_request

    extra = {"regulation": regulation} if regulation else {}
    receipt = submit(invoke, unique_email("due"), **extra)
    stored = get_request(receipt["request_id"])
    due = datetime.fromisoformat(receipt["due_at"])
    assert due == stored.due_at == deadlines.due_at(regulation, stored.created_at)
    assert days_low <= (due - stored.created_at).days <= days_high
    assert stored.regulation.value == (regulation or "default")


# --------------------------------------------------------------------------------------------- abuse
def test_a_retried_identical_submission_returns_the_same_request(invoke: Callable[..., Any]) -> None:
    # Given a submission
    email = unique_email("retry")
    first = submit(invoke, email, "erasure")
    # When the same body is posted again, then the same request comes back and only one code was sent
    again = submit(invoke, email, "erasure")
    assert again == first
    to_subject = [m for m in sent_messages() if email in m.raw_data]
    assert len(to_subject) == 1
    # And a different body is a different request
    other = submit(invoke, email, "access")
    assert other["request_id"] != first["request_id"]


def test_answers_do_not_depend_on_whether_the_email_is_known(invoke: Callable[..., Any]) -> None:
    # Given one address that already filed a request and one never seen
    known, unknown = unique_email("known"), unique_email("unknown")
    submit(invoke, known, "access")
    a = call(invoke, "POST", "/requests", {"type": "erasure", "email": known})
    b = call(invoke, "POST", "/requests", {"type": "erasure", "email": unknown})
    # Then both answers have the same status, shape and headers
    assert a[0] == b[0] == 202
    assert set(a[1]) == set(b[1]) and a[1]["status"] == b[1]["status"]
    assert set(a[2]) == set(b[2])


def test_per_email_limit_answers_429_with_retry_after(invoke: Callable[..., Any]) -> None:
    from lethe.settings import get_settings

    email = unique_email("limit")
    allowed = get_settings().submissions_per_email_per_hour
    for n in range(allowed):
        submit(invoke, email, details=f"attempt {n}")
    status, body, headers = call(invoke, "POST", "/requests", {"type": "access", "email": email, "details": "more"})
    assert status == 429
    assert_error(body, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 3600


def test_per_ip_limit_answers_429_with_retry_after(invoke: Callable[..., Any]) -> None:
    from lethe.settings import get_settings

    allowed = get_settings().submissions_per_ip_per_hour
    ip = "203.0.113.99"
    for _ in range(allowed):
        status, _, _ = call(invoke, "POST", "/requests", {"type": "access", "email": unique_email("ip")}, source_ip=ip)
        assert status == 202
    status, body, headers = call(
        invoke, "POST", "/requests", {"type": "access", "email": unique_email("ip")}, source_ip=ip
    )
    assert status == 429
    assert_error(body, "rate_limited")
    assert int(headers["Retry-After"]) >= 1
    # Another address on another IP is unaffected
    assert call(invoke, "POST", "/requests", {"type": "access", "email": unique_email("ip")})[0] == 202


# ------------------------------------------------------------------------------ expiry of unverified requests
def test_requests_unverified_for_seven_days_expire(invoke: Callable[..., Any]) -> None:
    # Given one request filed now and verified, and one left unverified
    from lethe.logic import intake
    from lethe.logic.requests import get_request, list_events

    stale = submit(invoke, unique_email("stale"))["request_id"]
    fresh_email = unique_email("fresh")
    fresh = submit(invoke, fresh_email, "complaint")["request_id"]
    call(invoke, "POST", f"/requests/{fresh}/verify", {"code": code_sent_to(fresh_email)})

    # When the watcher runs six days later, nothing expires; eight days later, the unverified one does
    assert intake.expire_unverified(datetime.now(UTC) + timedelta(days=6)) == 0
    assert intake.expire_unverified(datetime.now(UTC) + timedelta(days=8)) == 1

    # Then it is expired with its reason, and the verified one is untouched
    assert get_request(stale).status == "expired"
    assert list_events(stale)[-1].detail == {"reason": intake.NEVER_VERIFIED}
    assert get_request(fresh).status == "awaiting_approval"


def test_openapi_documents_the_routes_and_their_error_body(invoke: Callable[..., Any]) -> None:
    event = api_event("GET", "/openapi.json")
    spec = json.loads(invoke(FN, event)["body"])
    post = spec["paths"]["/requests"]["post"]
    assert "202" in post["responses"] and "422" in post["responses"] and "413" in post["responses"]
    error_ref = post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith("/ErrorBody")
    assert {"get", "delete"} <= set(spec["paths"]["/requests/{id}"])
    assert "post" in spec["paths"]["/requests/{id}/verify"]

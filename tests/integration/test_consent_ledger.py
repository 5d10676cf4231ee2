"""The consent ledger through the real PublicApiFunction handler, against moto."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from lethe.data.models import ConsentRecord
from lethe.keys import key_ring
from lethe_local.events import api_event

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def new_id(prefix: str = "device") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def call(
    invoke: Invoke,
    method: str,
    path: str,
    *,
    body: Any = None,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "203.0.113.9",
    raw_body: str | None = None,
) -> tuple[int, Any]:
    sent = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    event = api_event(
        method,
        path,
        resource=resource,
        path_parameters=path_parameters,
        headers={"Content-Type": "application/json", **(headers or {})},
        body=sent,
        source_ip=source_ip,
    )
    response = invoke("PublicApiFunction", event)
    return response["statusCode"], decode(response)


def decode(response: dict[str, Any]) -> Any:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    multi = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    kind = headers.get("content-type") or (multi.get("content-type") or [""])[0]
    text = response["body"]
    return json.loads(text) if kind.startswith("application/json") and text else text


def record(invoke: Invoke, subject_id: str, purposes: dict[str, bool], **extra: Any) -> tuple[int, Any]:
    headers = extra.pop("headers", None)
    body = {"subject_id": subject_id, "purposes": purposes, "policy_version": "2026-01", "source": "banner", **extra}
    return call(invoke, "POST", "/consents", body=body, headers=headers)


def read(invoke: Invoke, subject_id: str) -> tuple[int, Any]:
    return call(
        invoke,
        "GET",
        f"/consents/{subject_id}",
        resource="/consents/{subject_id}",
        path_parameters={"subject_id": subject_id},
    )


def history(invoke: Invoke, subject_id: str) -> tuple[int, Any]:
    return call(
        invoke,
        "GET",
        f"/consents/{subject_id}/history",
        resource="/consents/{subject_id}/history",
        path_parameters={"subject_id": subject_id},
    )


def test_recorded_choices_are_read_back_per_purpose(invoke: Invoke) -> None:
    # Given a device that accepts performance and refuses functionality
    device = new_id()
    status, _ = record(invoke, device, {"strictly_necessary": True, "performance": True, "functionality": False})
    assert status == 201
    # When its consent is read
    status, view = read(invoke, device)
    # Then each purpose shows its choice, policy version and time
    assert status == 200
    assert view["subject_id"] == device
    assert view["purposes"]["performance"]["granted"] is True
    assert view["purposes"]["functionality"]["granted"] is False
    assert view["purposes"]["performance"]["policy_version"] == "2026-01"
    assert view["purposes"]["performance"]["at"]
    assert "marketing_email" not in view["purposes"]


def test_a_withdrawal_replaces_the_current_state_and_history_keeps_both(invoke: Invoke) -> None:
    # Given a device that granted performance, then withdrew it
    device = new_id()
    record(invoke, device, {"performance": True}, headers={"User-Agent": CHROME})
    record(invoke, device, {"performance": False}, headers={"User-Agent": FIREFOX})
    # Then the current state is the withdrawal
    assert read(invoke, device)[1]["purposes"]["performance"]["granted"] is False
    # And the history holds both, in order, with hashed IP and the user agent family only
    status, found = history(invoke, device)
    assert status == 200
    changes = [c for c in found["changes"] if c["purpose"] == "performance"]
    assert [c["granted"] for c in changes] == [True, False]
    assert [c["user_agent_family"] for c in changes] == ["Chrome", "Firefox"]
    assert changes[0]["ip_hash"] == key_ring().hash_ip("203.0.113.9")
    assert changes[0]["source"] == "banner" and changes[0]["policy_version"] == "2026-01"
    # And no stored row holds the raw IP or user agent
    rows = [str(r.attribute_values) for r in ConsentRecord.query(f"SUBJ#{device}")]
    assert rows and not any("203.0.113.9" in r or "Gecko/20100101" in r for r in rows)


def test_history_rows_are_never_overwritten(invoke: Invoke) -> None:
    # Given two recordings for the same purpose
    device = new_id()
    for granted in (True, False, True):
        record(invoke, device, {"functionality": granted})
    # Then three distinct history rows exist and one current row
    hist = [r for r in ConsentRecord.query(f"SUBJ#{device}") if r.sk.startswith("HIST#")]
    current = [r for r in ConsentRecord.query(f"SUBJ#{device}") if r.sk.startswith("PURPOSE#")]
    assert len(hist) == 3 and len({r.sk for r in hist}) == 3
    assert len(current) == 1


def test_global_privacy_control_refuses_marketing_even_when_the_banner_accepts_all(invoke: Invoke) -> None:
    # Given a banner's "accept all" sent with Sec-GPC: 1
    device = new_id()
    everything = {name: True for name in ("strictly_necessary", "performance", "functionality", "marketing_email")}
    status, view = record(invoke, device, everything, headers={"Sec-GPC": "1"})
    # Then marketing is refused and the other purposes are granted
    assert status == 201
    assert view["purposes"]["marketing_email"]["granted"] is False
    assert view["purposes"]["performance"]["granted"] is True
    # And the history says GPC decided it
    changes = history(invoke, device)[1]["changes"]
    marketing = [c for c in changes if c["purpose"] == "marketing_email"]
    assert len(marketing) == 1 and marketing[0]["note"] == "gpc"
    assert marketing[0]["granted"] is False


def test_granted_purposes_are_found_through_the_sparse_index(invoke: Invoke) -> None:
    # Given one subscriber of policy_updates with an address, and one who refused
    subscriber, refuser = new_id(), new_id()
    record(invoke, subscriber, {"policy_updates": True}, email="Notice.Me@example.com")
    record(invoke, refuser, {"policy_updates": False})
    # Then the index holds the subscriber only, with the normalized contact
    found = list(ConsentRecord.by_granted_purpose.query("policy_updates"))
    ids = {r.subject_id for r in found}
    assert subscriber in ids and refuser not in ids
    row = next(r for r in found if r.subject_id == subscriber)
    assert row.contact == "notice.me@example.com"
    assert row.contact_ref == key_ring().subject_ref("notice.me@example.com")
    # And the address never reaches the history or the public view
    assert "notice.me" not in json.dumps(history(invoke, subscriber)[1]).lower()
    assert "notice.me" not in json.dumps(read(invoke, subscriber)[1]).lower()


def test_a_guest_device_linked_to_an_account_brings_its_newer_choices(invoke: Invoke) -> None:
    # Given an account that refused performance, and later a guest device that granted it and functionality
    account, device = new_id("acct"), new_id()
    record(invoke, account, {"performance": False, "marketing_email": False})
    record(invoke, device, {"performance": True, "functionality": True})
    # When the guest signs up and the device is linked to the account
    status, view = call(
        invoke,
        "POST",
        f"/consents/{device}/link",
        body={"account_id": account},
        resource="/consents/{subject_id}/link",
        path_parameters={"subject_id": device},
    )
    # Then the account's current state takes the device's more recent choices and keeps its own others
    assert status == 200, view
    assert view["purposes"]["performance"]["granted"] is True
    assert view["purposes"]["functionality"]["granted"] is True
    assert view["purposes"]["marketing_email"]["granted"] is False
    assert device in view["linked"]
    # And both histories show the link
    account_notes = {c["note"] for c in history(invoke, account)[1]["changes"]}
    device_notes = {c["note"] for c in history(invoke, device)[1]["changes"]}
    assert f"linked from {device}" in account_notes
    assert f"linked to {account}" in device_notes
    assert account in read(invoke, device)[1]["linked"]
    # And the account's history carries the device's earlier choices, each naming its subject
    account_history = history(invoke, account)[1]["changes"]
    assert {c["subject_id"] for c in account_history} == {account, device}
    granted_on_device = [c for c in account_history if c["subject_id"] == device and c["note"] is None]
    assert {c["purpose"] for c in granted_on_device} == {"performance", "functionality"}
    assert [c["at"] for c in account_history] == sorted(c["at"] for c in account_history)


def test_linking_twice_changes_nothing(invoke: Invoke) -> None:
    account, device = new_id("acct"), new_id()
    record(invoke, device, {"performance": True})
    link = {
        "body": {"account_id": account},
        "resource": "/consents/{subject_id}/link",
        "path_parameters": {"subject_id": device},
    }
    call(invoke, "POST", f"/consents/{device}/link", **link)
    before = len(history(invoke, account)[1]["changes"])
    status, _ = call(invoke, "POST", f"/consents/{device}/link", **link)
    assert status == 200
    assert len(history(invoke, account)[1]["changes"]) == before


def test_an_unknown_subject_is_404(invoke: Invoke) -> None:
    status, body = read(invoke, new_id())
    assert status == 404 and body["error"]["code"] == "consent_not_found"
    status, body = history(invoke, new_id())
    assert status == 404


BAD_BODIES = [
    pytest.param({"purposes": {"strictly_necessary": False}}, 400, "invalid_consent", id="refuse-strictly-necessary"),
    pytest.param({"purposes": {"cookies_for_ads": True}}, 400, "invalid_consent", id="unknown-purpose"),
    pytest.param({"purposes": {}}, 422, "invalid_request", id="no-purposes"),
    pytest.param({"purposes": {"performance": "yes"}}, 422, "invalid_request", id="non-boolean"),
    pytest.param({"subject_id": "x"}, 422, "invalid_request", id="short-subject"),
    pytest.param({"subject_id": "../../etc/passwd"}, 422, "invalid_request", id="subject-charset"),
    pytest.param({"policy_version": ""}, 422, "invalid_request", id="empty-version"),
    pytest.param({"source": "A" * 200}, 422, "invalid_request", id="long-source"),
    pytest.param({"email": "not-an-email", "purposes": {"policy_updates": True}}, 422, "invalid_request", id="email"),
    pytest.param(
        {"email": "a@example.com", "purposes": {"performance": True}},
        400,
        "invalid_consent",
        id="email-without-subscription",
    ),
    pytest.param({"surprise": 1}, 422, "invalid_request", id="extra-field"),
]


@pytest.mark.parametrize(("override", "status", "code"), BAD_BODIES)
def test_bad_bodies_are_4xx_json(invoke: Invoke, override: dict[str, Any], status: int, code: str) -> None:
    body = {
        "subject_id": new_id(),
        "purposes": {"performance": True},
        "policy_version": "2026-01",
        "source": "banner",
        **override,
    }
    got, answer = call(invoke, "POST", "/consents", body=body)
    assert got == status, answer
    assert answer["error"]["code"] == code


@pytest.mark.parametrize(
    "raw", ["{not json", "[]", "null", '"text"', ""], ids=["broken", "list", "null", "str", "empty"]
)
def test_malformed_bodies_are_4xx_json(invoke: Invoke, raw: str) -> None:
    status, answer = call(invoke, "POST", "/consents", raw_body=raw)
    assert 400 <= status < 500
    assert "error" in answer


def test_a_bad_subject_id_in_the_path_is_4xx(invoke: Invoke) -> None:
    status, answer = read(invoke, "bad id!")
    assert status == 422 and answer["error"]["code"] == "invalid_request"


def test_no_address_reaches_the_logs_when_consenting_and_unsubscribing(
    invoke: Invoke, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an address that subscribes, is rejected once, and then unsubscribes in one click
    from lethe.logic.unsubscribe import make_token

    caplog.set_level(logging.INFO)
    local_part = f"logcheck-{uuid.uuid4().hex[:10]}"
    email = f"{local_part}@example.com"
    device = new_id()
    assert record(invoke, device, {"marketing_email": True, "policy_updates": True}, email=email)[0] == 201
    assert record(invoke, device, {"performance": True}, email=email)[0] == 400
    event = api_event("POST", "/unsubscribe", query={"token": [make_token(email)]}, body="List-Unsubscribe=One-Click")
    assert invoke("PublicApiFunction", event)["statusCode"] == 200
    # Then nothing logged (Powertools JSON on stdout, libraries through logging) holds the address
    logs = caplog.text + capsys.readouterr().out
    assert local_part not in logs

"""The consent ledger through the real PublicApiFunction and AdminApiFunction handlers, against moto."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_string, policy
from email.message import EmailMessage
from typing import Any

import pytest

from lethe.data.models import ConsentDeviceRecord, ConsentRecord
from lethe_local.events import api_event

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SECRET_HEADER = "X-Lethe-Device-Secret"


@dataclass
class Device:
    id: str
    secret: str


def new_id(prefix: str = "acct") -> str:
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
    function: str = "PublicApiFunction",
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
    response = invoke(function, event)
    return response["statusCode"], decode(response)


def decode(response: dict[str, Any]) -> Any:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    multi = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    kind = headers.get("content-type") or (multi.get("content-type") or [""])[0]
    text = response["body"]
    return json.loads(text) if kind.startswith("application/json") and text else text


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    """A response's headers by lower-case name (the resolver may answer them single- or multi-valued)."""
    found = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    found.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items() if v})
    return found


def choices(purposes: dict[str, bool], **extra: Any) -> dict[str, Any]:
    return {"purposes": purposes, "policy_version": "2026-01", "source": "banner", **extra}


def mint(invoke: Invoke, purposes: dict[str, bool], **extra: Any) -> tuple[Device, dict[str, Any]]:
    """A device's first consent: no subject_id, so Lethe mints the id and its secret."""
    headers = extra.pop("headers", None)
    source_ip = extra.pop("source_ip", "203.0.113.9")
    body = choices(purposes, **extra)
    status, body = call(invoke, "POST", "/consents", body=body, headers=headers, source_ip=source_ip)
    assert status == 201, body
    return Device(body["subject_id"], body["device_secret"]), body


def record(invoke: Invoke, device: Device, purposes: dict[str, bool], **extra: Any) -> tuple[int, Any]:
    headers = {SECRET_HEADER: device.secret, **(extra.pop("headers", None) or {})}
    source_ip = extra.pop("source_ip", "203.0.113.9")
    body = {"subject_id": device.id, **choices(purposes, **extra)}
    return call(invoke, "POST", "/consents", body=body, headers=headers, source_ip=source_ip)


def _get(invoke: Invoke, subject_id: str, suffix: str, headers: dict[str, str] | None) -> tuple[int, Any]:
    return call(
        invoke,
        "GET",
        f"/consents/{subject_id}{suffix}",
        resource=f"/consents/{{subject_id}}{suffix}",
        path_parameters={"subject_id": subject_id},
        headers=headers,
    )


def read(invoke: Invoke, device: Device, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return _get(invoke, device.id, "", headers if headers is not None else {SECRET_HEADER: device.secret})


def history(invoke: Invoke, device: Device, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return _get(invoke, device.id, "/history", headers if headers is not None else {SECRET_HEADER: device.secret})


def admin(invoke: Invoke, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return call(
        invoke, method, path, body=body, headers={"Authorization": f"Bearer {token}"}, function="AdminApiFunction"
    )


def test_a_first_consent_mints_a_device_id_and_a_secret_of_which_only_a_hash_is_kept(invoke: Invoke) -> None:
    # When a banner records a first choice without a subject_id
    device, body = mint(invoke, {"strictly_necessary": True, "performance": True, "functionality": False})
    # Then it gets an unguessable device id and secret, and the choices
    assert device.id.startswith("dev-") and len(device.id) == 36
    assert len(device.secret) >= 43
    assert body["purposes"]["performance"]["granted"] is True
    assert body["purposes"]["functionality"]["granted"] is False
    # And the ledger keeps only the secret's hash
    row = ConsentDeviceRecord.get(f"SUBJ#{device.id}", "DEVICE")
    assert row.secret_hash == hashlib.sha256(device.secret.encode()).hexdigest()
    stored = json.dumps([r.attribute_values for r in ConsentRecord.query(f"SUBJ#{device.id}")])
    assert device.secret not in stored
    # And two devices never share an id
    assert mint(invoke, {"performance": True})[0].id != device.id


def test_recorded_choices_are_read_back_with_the_device_secret(invoke: Invoke) -> None:
    device, _ = mint(invoke, {"strictly_necessary": True, "performance": True})
    status, view = read(invoke, device)
    assert status == 200
    assert view["subject_id"] == device.id
    assert view["purposes"]["performance"]["granted"] is True
    assert view["purposes"]["performance"]["policy_version"] == "2026-01"
    assert "marketing_email" not in view["purposes"]
    assert "device_secret" not in view


@pytest.mark.parametrize(
    ("secret", "status", "code"),
    [
        pytest.param(None, 401, "unauthorized", id="no-secret"),
        pytest.param("not-the-secret", 403, "forbidden", id="wrong-secret"),
        pytest.param("", 401, "unauthorized", id="empty-secret"),
    ],
)
def test_writing_or_reading_a_device_needs_its_secret(
    invoke: Invoke, secret: str | None, status: int, code: str
) -> None:
    # Given a device that refused performance
    device, _ = mint(invoke, {"performance": False})
    headers = {} if secret is None else {SECRET_HEADER: secret}
    # When someone without its secret tries to grant performance, or read its choices
    body = {"subject_id": device.id, **choices({"performance": True})}
    got = [
        call(invoke, "POST", "/consents", body=body, headers=headers),
        read(invoke, device, headers),
        history(invoke, device, headers),
    ]
    # Then each is refused in the error schema, and the choice is unchanged
    for answer_status, answer in got:
        assert answer_status == status, answer
        assert answer["error"]["code"] == code
    assert read(invoke, device)[1]["purposes"]["performance"]["granted"] is False


@pytest.mark.parametrize("subject_id", ["acct-ada-0001", "device-1234abcd", "dev-" + "0" * 32])
def test_the_public_api_never_writes_an_id_lethe_did_not_mint(invoke: Invoke, subject_id: str) -> None:
    # Given an id Lethe never minted (an account id, an old-style or made-up device id)
    body = {"subject_id": subject_id, **choices({"marketing_email": True}, email="attacker@example.net")}
    # When it is written with any secret
    status, answer = call(invoke, "POST", "/consents", body=body, headers={SECRET_HEADER: "a" * 43})
    # Then it is refused like a wrong secret (no hint whether the id exists), and nothing is written
    assert status == 403 and answer["error"]["code"] == "forbidden"
    assert list(ConsentRecord.query(f"SUBJ#{subject_id}")) == []


def test_one_device_secret_does_not_open_another_device(invoke: Invoke) -> None:
    mine, _ = mint(invoke, {"performance": True})
    theirs, _ = mint(invoke, {"performance": False})
    status, answer = read(invoke, theirs, {SECRET_HEADER: mine.secret})
    assert status == 403 and answer["error"]["code"] == "forbidden"


def test_a_withdrawal_replaces_the_current_state_and_history_keeps_both(invoke: Invoke) -> None:
    # Given a device that granted performance, then withdrew it
    device, _ = mint(invoke, {"performance": True}, headers={"User-Agent": CHROME})
    record(invoke, device, {"performance": False}, headers={"User-Agent": FIREFOX})
    # Then the current state is the withdrawal
    assert read(invoke, device)[1]["purposes"]["performance"]["granted"] is False
    # And the history holds both, in order, with the user agent family only and no IP hash for the public
    status, found = history(invoke, device)
    assert status == 200
    changes = [c for c in found["changes"] if c["purpose"] == "performance"]
    assert [c["granted"] for c in changes] == [True, False]
    assert [c["user_agent_family"] for c in changes] == ["Chrome", "Firefox"]
    assert all("ip_hash" not in c or c["ip_hash"] is None for c in found["changes"])
    assert changes[0]["source"] == "banner" and changes[0]["policy_version"] == "2026-01"
    # And no stored row holds the raw IP or user agent
    rows = [str(r.attribute_values) for r in ConsentRecord.query(f"SUBJ#{device.id}")]
    assert rows and not any("203.0.113.9" in r or "Gecko/20100101" in r for r in rows)


def test_operators_see_an_ip_hash_that_does_not_link_two_devices_at_one_address(
    invoke: Invoke, admin_token: str
) -> None:
    # Given two devices that consented from the same IP
    first, _ = mint(invoke, {"performance": True}, source_ip="198.51.100.7")
    second, _ = mint(invoke, {"performance": True}, source_ip="198.51.100.7")
    # When an operator reads their histories, on the admin API or with the token on the public one
    hashes = []
    for device in (first, second):
        status, found = admin(invoke, admin_token, "GET", f"/admin/consents/{device.id}/history")
        assert status == 200, found
        hashes.append(found["changes"][0]["ip_hash"])
        public_status, public = history(invoke, device, {"Authorization": f"Bearer {admin_token}"})
        assert public_status == 200 and public["changes"][0].get("ip_hash") is None
    # Then each row keeps an IP hash as evidence, but the same IP gives each subject another hash
    assert all(hashes) and hashes[0] != hashes[1]
    assert "198.51.100.7" not in json.dumps(hashes)


def test_a_wrong_operator_token_on_the_public_read_is_refused(invoke: Invoke, admin_token: str) -> None:
    device, _ = mint(invoke, {"performance": True})
    assert read(invoke, device, {"Authorization": f"Bearer {admin_token}"})[0] == 200
    status, answer = read(invoke, device, {"Authorization": "Bearer guessed"})
    assert status == 403 and answer["error"]["code"] == "forbidden"


def test_history_rows_are_never_overwritten(invoke: Invoke) -> None:
    device, _ = mint(invoke, {"functionality": True})
    for granted in (False, True):
        record(invoke, device, {"functionality": granted})
    rows = list(ConsentRecord.query(f"SUBJ#{device.id}"))
    hist = [r for r in rows if r.sk.startswith("HIST#")]
    assert len(hist) == 3 and len({r.sk for r in hist}) == 3
    assert len([r for r in rows if r.sk.startswith("PURPOSE#")]) == 1


def test_global_privacy_control_refuses_marketing_even_when_the_banner_accepts_all(invoke: Invoke) -> None:
    everything = {name: True for name in ("strictly_necessary", "performance", "functionality", "marketing_email")}
    device, view = mint(invoke, everything, headers={"Sec-GPC": "1"})
    assert view["purposes"]["marketing_email"]["granted"] is False
    assert view["purposes"]["performance"]["granted"] is True
    marketing = [c for c in history(invoke, device)[1]["changes"] if c["purpose"] == "marketing_email"]
    assert len(marketing) == 1 and marketing[0]["note"] == "gpc" and marketing[0]["granted"] is False


def test_the_account_service_records_an_account_and_links_a_guest_device(invoke: Invoke, admin_token: str) -> None:
    # Given an account that refused performance (written by the account service), and a newer guest device
    account = new_id("acct")
    status, recorded = admin(
        invoke, admin_token, "POST", "/admin/consents",
        {"subject_id": account, **choices({"performance": False, "marketing_email": False}, source="signup")},
    )  # fmt: skip
    assert status == 201, recorded
    device, _ = mint(invoke, {"performance": True, "functionality": True})
    # When the guest signs up and the account service links the device
    status, view = admin(invoke, admin_token, "POST", f"/admin/consents/{device.id}/link", {"account_id": account})
    # Then the account takes the device's more recent choices and keeps its own others
    assert status == 200, view
    assert view["purposes"]["performance"]["granted"] is True
    assert view["purposes"]["functionality"]["granted"] is True
    assert view["purposes"]["marketing_email"]["granted"] is False
    assert device.id in view["linked"]
    # And both histories show the link; the account's also carries the device's earlier choices
    account_history = admin(invoke, admin_token, "GET", f"/admin/consents/{account}/history")[1]["changes"]
    assert f"linked from {device.id}" in {c["note"] for c in account_history}
    assert f"linked to {account}" in {c["note"] for c in history(invoke, device)[1]["changes"]}
    assert {c["subject_id"] for c in account_history} == {account, device.id}
    # And linking again changes nothing
    before = len(account_history)
    assert admin(invoke, admin_token, "POST", f"/admin/consents/{device.id}/link", {"account_id": account})[0] == 200
    assert len(admin(invoke, admin_token, "GET", f"/admin/consents/{account}/history")[1]["changes"]) == before


def test_linking_is_not_a_public_route(invoke: Invoke) -> None:
    # Given a device and its secret
    device, _ = mint(invoke, {"performance": True})
    # When it tries to link itself to someone's account on the public API
    status, answer = call(
        invoke,
        "POST",
        f"/consents/{device.id}/link",
        body={"account_id": "acct-victim-01"},
        headers={SECRET_HEADER: device.secret},
    )
    # Then there is no such route, and the account has no consent
    assert status == 404 and answer["error"]["code"] == "not_found"
    assert list(ConsentRecord.query("SUBJ#acct-victim-01")) == []


@pytest.mark.parametrize("case", ["unminted-device", "device-to-device", "itself"])
def test_a_link_names_a_minted_device_and_an_account(invoke: Invoke, admin_token: str, case: str) -> None:
    device, _ = mint(invoke, {"performance": True})
    other, _ = mint(invoke, {"performance": False})
    device_id, account_id = {
        "unminted-device": ("device-not-minted", "acct-real-0001"),
        "device-to-device": (device.id, other.id),
        "itself": (device.id, device.id),
    }[case]
    status, answer = admin(invoke, admin_token, "POST", f"/admin/consents/{device_id}/link", {"account_id": account_id})
    assert status == 400 and answer["error"]["code"] == "invalid_consent"
    assert read(invoke, other)[1]["linked"] == []


def test_an_unknown_subject_is_404_for_an_operator(invoke: Invoke, admin_token: str) -> None:
    status, body = admin(invoke, admin_token, "GET", f"/admin/consents/{new_id()}")
    assert status == 404 and body["error"]["code"] == "consent_not_found"


def test_the_admin_consent_routes_need_the_operator_token(invoke: Invoke, admin_token: str) -> None:
    body = {"subject_id": new_id(), **choices({"performance": True})}
    status, answer = call(invoke, "POST", "/admin/consents", body=body, function="AdminApiFunction")
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    assert list(ConsentRecord.query(f"SUBJ#{body['subject_id']}")) == []


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
def test_bad_bodies_are_4xx_json_and_mint_nothing(
    invoke: Invoke, override: dict[str, Any], status: int, code: str
) -> None:
    devices_before = sum(1 for _ in ConsentDeviceRecord.scan())
    body = {**choices({"performance": True}), **override}
    got, answer = call(invoke, "POST", "/consents", body=body)
    assert got == status, answer
    assert answer["error"]["code"] == code
    assert sum(1 for _ in ConsentDeviceRecord.scan()) == devices_before


@pytest.mark.parametrize(
    "raw", ["{not json", "[]", "null", '"text"', ""], ids=["broken", "list", "null", "str", "empty"]
)
def test_malformed_bodies_are_4xx_json(invoke: Invoke, raw: str) -> None:
    status, answer = call(invoke, "POST", "/consents", raw_body=raw)
    assert 400 <= status < 500
    assert "error" in answer


def test_a_bad_subject_id_in_the_path_is_4xx(invoke: Invoke) -> None:
    status, answer = _get(invoke, "bad id!", "", {SECRET_HEADER: "x"})
    assert status == 422 and answer["error"]["code"] == "invalid_request"


def test_no_address_or_secret_reaches_the_logs(
    invoke: Invoke, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an address that subscribes, is rejected once, and then unsubscribes in one click
    from lethe.logic.unsubscribe import make_token

    caplog.set_level(logging.INFO)
    local_part = f"logcheck-{uuid.uuid4().hex[:10]}"
    email = f"{local_part}@example.com"
    device, _ = mint(invoke, {"marketing_email": True, "policy_updates": True}, email=email)
    assert record(invoke, device, {"performance": True}, email=email)[0] == 400
    event = api_event("POST", "/unsubscribe", query={"token": [make_token(email)]}, body="List-Unsubscribe=One-Click")
    assert invoke("PublicApiFunction", event)["statusCode"] == 200
    # Then nothing logged (Powertools JSON on stdout, libraries through logging) holds the address or secret
    logs = caplog.text + capsys.readouterr().out
    assert local_part not in logs and device.secret not in logs


CONFIRM_LINK = re.compile(r"/subscriptions/confirm\?token=([A-Za-z0-9_-]{43})")


def mails_to(address: str) -> list[EmailMessage]:
    """The messages SES (moto) was asked to send to an address, oldest first."""
    from moto.ses.models import ses_backends

    sent = ses_backends["123456789012"]["us-east-1"].sent_messages
    found = [m.raw_data for m in sent if address in (getattr(m, "destinations", None) or [])]
    return [message_from_string(raw, policy=policy.default) for raw in found]  # type: ignore[misc]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


def confirmation_tokens(address: str) -> list[str]:
    return [found.group(1) for m in mails_to(address) if (found := CONFIRM_LINK.search(text_of(m)))]


def confirm(invoke: Invoke, token: str, method: str = "POST") -> tuple[int, Any, dict[str, str]]:
    event = api_event(method, "/subscriptions/confirm", query={"token": [token]})
    response = invoke("PublicApiFunction", event)
    return response["statusCode"], decode(response), headers_of(response)


def subscribe(invoke: Invoke, purposes: dict[str, bool], email: str, **extra: Any) -> Device:
    """A device that grants a contact purpose with an address, and whose address owner confirms it."""
    device, body = mint(invoke, purposes, email=email, **extra)
    assert body["email_confirmation"] == "pending"
    assert confirm(invoke, confirmation_tokens(email)[-1])[0] == 200
    return device

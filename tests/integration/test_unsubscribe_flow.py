"""Signed one-click unsubscribe and the suppression list, through the real API handlers against moto."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from lethe.logic.consent import withdraw_marketing
from lethe.logic.suppression import is_suppressed
from lethe.settings import get_settings
from lethe_local.events import api_event
from tests.integration.test_consent_ledger import decode, read, record

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch, invoke: Invoke) -> Callable[..., tuple[int, Any]]:
    return admin_caller(monkeypatch, invoke)


def admin_caller(monkeypatch: pytest.MonkeyPatch, invoke: Invoke) -> Callable[..., tuple[int, Any]]:
    """Calls the admin API with a valid operator token."""
    token = f"itest-{uuid.uuid4()}"
    monkeypatch.setenv("LETHE_ADMIN_TOKEN", token)
    get_settings.cache_clear()

    def call(method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
        event = api_event(
            method,
            path,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            query={k: [v] for k, v in (query or {}).items()},
            body=json.dumps(body) if body is not None else None,
        )
        response = invoke("AdminApiFunction", event)
        return response["statusCode"], decode(response)

    return call


def public(invoke: Invoke, method: str, token: str, *, body: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    event = api_event(method, "/unsubscribe", query={"token": [token]}, headers=headers, body=body)
    response = invoke("PublicApiFunction", event)
    return response["statusCode"], decode(response)


def new_email() -> str:
    return f"reader-{uuid.uuid4().hex[:10]}@example.com"


def token_of(url: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["token"][0]


def test_the_admin_gets_a_signed_link_and_rfc_8058_headers(operator: Callable[..., Any]) -> None:
    email = new_email()
    status, link = operator("POST", "/admin/unsubscribe-links", body={"email": email})
    assert status == 200, link
    assert link["url"].startswith(get_settings().public_base_url + "/unsubscribe?token=")
    assert link["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link["headers"]["List-Unsubscribe"].startswith(f"<{link['url']}>, <mailto:")


def test_the_link_shows_a_confirmation_page_and_does_not_unsubscribe_on_get(
    operator: Callable[..., Any], invoke: Invoke
) -> None:
    email = new_email()
    token = token_of(operator("POST", "/admin/unsubscribe-links", body={"email": email})[1]["url"])
    status, page = public(invoke, "GET", token)
    assert status == 200
    assert '<form method="post"' in page and "Unsubscribe" in page
    assert email not in page
    # A link scanner's GET must not unsubscribe
    assert operator("GET", "/admin/suppressions", query={"email": email})[1] == {"suppressed": False}


def test_one_click_unsubscribes_suppresses_and_withdraws_marketing(
    operator: Callable[..., Any], invoke: Invoke
) -> None:
    # Given a subscriber to marketing email, known to the ledger by that address
    email = new_email()
    device = f"device-{uuid.uuid4().hex[:12]}"
    record(invoke, device, {"marketing_email": True}, email=email)
    token = token_of(operator("POST", "/admin/unsubscribe-links", body={"email": email})[1]["url"])
    # When the mail client posts the one-click body
    status, page = public(invoke, "POST", token, body="List-Unsubscribe=One-Click")
    # Then the answer is an HTML page, the address is suppressed and marketing is withdrawn in the ledger
    assert status == 200 and "unsubscribed" in page
    assert operator("GET", "/admin/suppressions", query={"email": email.upper()})[1] == {"suppressed": True}
    view = read(invoke, device)[1]
    assert view["purposes"]["marketing_email"]["granted"] is False
    assert view["purposes"]["marketing_email"]["source"] == "one_click_unsubscribe"
    # And clicking again is harmless
    assert public(invoke, "POST", token, body="List-Unsubscribe=One-Click")[0] == 200


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t: t[:-2] + ("00" if not t.endswith("00") else "11"), id="altered-mac"),
        pytest.param(
            lambda t: urllib.parse.quote("dmljdGltQGV4YW1wbGUuY29t") + "." + t.split(".", 1)[1], id="other-address"
        ),
        pytest.param(lambda t: "bm9ib2R5QGV4YW1wbGUuY29t.k0.deadbeef", id="made-up"),
    ],
)
def test_a_forged_token_is_refused_with_4xx_and_changes_nothing(
    operator: Callable[..., Any], invoke: Invoke, forge: Callable[[str], str]
) -> None:
    email = new_email()
    token = token_of(operator("POST", "/admin/unsubscribe-links", body={"email": email})[1]["url"])
    forged = forge(token)
    for method in ("GET", "POST"):
        status, answer = public(invoke, method, forged, body="List-Unsubscribe=One-Click" if method == "POST" else None)
        assert status == 400 and answer["error"]["code"] == "invalid_token"
    assert not is_suppressed(email)
    assert not is_suppressed("victim@example.com")


def test_a_missing_token_is_4xx_json(invoke: Invoke) -> None:
    response = invoke("PublicApiFunction", api_event("POST", "/unsubscribe", body="List-Unsubscribe=One-Click"))
    assert 400 <= response["statusCode"] < 500
    assert "error" in decode(response)


@pytest.mark.parametrize("body", [{}, {"email": "nope"}, {"email": "a@example.com", "x": 1}, []])
def test_bad_unsubscribe_link_bodies_are_4xx_json(operator: Callable[..., Any], body: Any) -> None:
    status, answer = operator("POST", "/admin/unsubscribe-links", body=body)
    assert 400 <= status < 500 and "error" in answer


def test_a_suppression_lookup_without_an_email_is_4xx(operator: Callable[..., Any]) -> None:
    status, answer = operator("GET", "/admin/suppressions")
    assert 400 <= status < 500 and "error" in answer


def test_withdraw_marketing_is_the_entry_point_for_verified_requests(invoke: Invoke) -> None:
    # Given two devices of one person subscribed to marketing with the same address
    email = new_email()
    devices = [f"device-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for device in devices:
        record(invoke, device, {"marketing_email": True, "performance": True}, email=email)
    # When a verified marketing_opt_out request withdraws marketing
    withdraw_marketing(email.title(), source="marketing_opt_out")
    # Then both devices refuse marketing, keep their other choices, and the address is suppressed
    for device in devices:
        purposes = read(invoke, device)[1]["purposes"]
        assert purposes["marketing_email"]["granted"] is False
        assert purposes["performance"]["granted"] is True
    assert is_suppressed(email)

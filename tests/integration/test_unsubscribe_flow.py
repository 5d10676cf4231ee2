"""Signed one-click unsubscribe and the suppression list, through the real API handlers against moto."""

from __future__ import annotations

import base64
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
from tests.integration.test_consent_ledger import decode, headers_of, read, subscribe

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


def public_page(invoke: Invoke, method: str, token: str) -> tuple[int, Any, dict[str, str]]:
    body = "List-Unsubscribe=One-Click" if method == "POST" else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    response = invoke(
        "PublicApiFunction", api_event(method, "/unsubscribe", query={"token": [token]}, headers=headers, body=body)
    )
    return response["statusCode"], decode(response), headers_of(response)


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
    device = subscribe(invoke, {"marketing_email": True}, email)
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


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_the_token_carries_no_address(operator: Callable[..., Any]) -> None:
    email = new_email()
    token = token_of(operator("POST", "/admin/unsubscribe-links", body={"email": email})[1]["url"])
    assert email not in token and email.split("@")[0] not in token
    assert _b64(email) not in token and _b64(email)[:8] not in token


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t, e: t[:-2] + ("00" if not t.endswith("00") else "11"), id="altered-mac"),
        pytest.param(lambda t, e: t + "=", id="padded"),
        pytest.param(lambda t, e: t + "==", id="padded-twice"),
        pytest.param(lambda t, e: t.upper(), id="upper-case"),
        pytest.param(lambda t, e: t + "\n", id="trailing-newline"),
        pytest.param(lambda t, e: "p" + t[1:], id="other-list"),
        pytest.param(lambda t, e: f"{_b64(e)}.k1.{'0' * 64}", id="old-address-format"),
        pytest.param(lambda t, e: "", id="empty"),
        pytest.param(lambda t, e: "x" * 2000, id="long"),
    ],
)
def test_a_forged_or_altered_token_gets_a_page_and_changes_nothing(
    operator: Callable[..., Any], invoke: Invoke, forge: Callable[[str, str], str]
) -> None:
    # Given a genuine link for a subscriber
    email = new_email()
    device = subscribe(invoke, {"marketing_email": True, "policy_updates": True}, email)
    token = token_of(operator("POST", "/admin/unsubscribe-links", body={"email": email})[1]["url"])
    # When a forged or altered variant is followed or posted
    for method in ("GET", "POST"):
        status, page, headers = public_page(invoke, method, forge(token, email))
        # Then a person gets an HTML page saying so, which no one can frame
        assert status == 400, page
        assert headers["content-type"].startswith("text/html") and "not valid" in page
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # And nothing changed
    assert not is_suppressed(email)
    purposes = read(invoke, device)[1]["purposes"]
    assert purposes["marketing_email"]["granted"] is True and purposes["policy_updates"]["granted"] is True


def test_a_missing_token_gets_a_page(invoke: Invoke) -> None:
    for method in ("GET", "POST"):
        response = invoke("PublicApiFunction", api_event(method, "/unsubscribe", body="List-Unsubscribe=One-Click"))
        assert response["statusCode"] == 400
        assert headers_of(response)["content-type"].startswith("text/html")


def test_the_unsubscribe_pages_cannot_be_framed_and_post_under_a_stage_path(
    operator: Callable[..., Any], invoke: Invoke
) -> None:
    token = token_of(operator("POST", "/admin/unsubscribe-links", body={"email": new_email()})[1]["url"])
    status, page, headers = public_page(invoke, "GET", token)
    assert status == 200
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["x-content-type-options"] == "nosniff"
    # The form posts to a relative URL, so it also works as /Prod/unsubscribe behind API Gateway
    assert f'action="?token={urllib.parse.quote(token, safe="")}"' in page


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
    devices = [subscribe(invoke, {"marketing_email": True, "performance": True}, email) for _ in range(2)]
    # When a verified marketing_opt_out request withdraws marketing
    withdraw_marketing(email.title(), source="marketing_opt_out")
    # Then both devices refuse marketing, keep their other choices, and the address is suppressed
    for device in devices:
        purposes = read(invoke, device)[1]["purposes"]
        assert purposes["marketing_email"]["granted"] is False
        assert purposes["performance"]["granted"] is True
    assert is_suppressed(email)


@pytest.mark.parametrize(
    "path",
    ["/", "/swagger", "/exports/not-a-real-export-link", "/unsubscribe", "/subscriptions/confirm"],
)
def test_no_html_page_lethe_serves_can_be_framed(invoke: Invoke, path: str) -> None:
    # Given any page a person may open (the form, Swagger UI, an export link, the email links, bad ones included)
    response = invoke(
        "PublicApiFunction",
        api_event(
            "GET",
            path,
            resource="/exports/{id}" if "exports" in path else None,
            path_parameters={"id": path.rsplit("/", 1)[1]} if "exports" in path else None,
        ),
    )
    headers = headers_of(response)
    # Then it is HTML and forbids framing
    assert headers["content-type"].startswith("text/html"), (path, response["statusCode"])
    assert "frame-ancestors 'none'" in headers["content-security-policy"]

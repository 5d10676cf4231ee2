"""The admin API's gate: a bearer token on the local stack, an IAM-admitted caller in AWS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lethe.api import admin, callers
from lethe.api.resolver import build_resolver
from lethe.errors import Forbidden, Unauthorized
from lethe.settings import get_settings
from lethe_local.events import api_event

TokenSetter = Callable[[str | None], None]
Resolve = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def admin_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str | None], None]]:
    def configure(token: str | None) -> None:
        if token is None:
            monkeypatch.delenv("LETHE_ADMIN_TOKEN", raising=False)
        else:
            monkeypatch.setenv("LETHE_ADMIN_TOKEN", token)
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


@pytest.fixture
def resolve() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A resolver with the admin gate and one probe route that touches no storage."""
    app = build_resolver()
    admin.register(app)

    @app.get("/admin/probe")
    def probe() -> dict[str, str]:
        return {"ok": "yes"}

    return lambda event: app.resolve(event, None)


def _iam_event(identity: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = api_event("GET", "/admin/probe", headers=headers)
    event["requestContext"]["identity"].update(identity)
    return event


def test_bearer_token_is_read_case_insensitively() -> None:
    # Given headers in the shapes clients send
    # Then the token is extracted, other schemes give "", and absence gives None
    assert callers.bearer_token({"authorization": "Bearer abc"}) == "abc"
    assert callers.bearer_token({"Authorization": "bearer  abc "}) == "abc"
    assert callers.bearer_token({"Authorization": "Basic abc"}) == ""
    assert callers.bearer_token({"X-Other": "1"}) is None
    assert callers.bearer_token(None) is None


def test_token_compare_is_exact() -> None:
    assert callers.token_matches("s3cret", "s3cret")
    assert not callers.token_matches("s3cre", "s3cret")
    assert not callers.token_matches("s3cret ", "s3cret")


def test_compare_goes_through_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a spy on the constant-time comparison
    calls: list[tuple[bytes, bytes]] = []
    real = callers.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(callers.hmac, "compare_digest", spy)
    # When a token is checked
    callers.token_matches("x", "y")
    # Then the comparison was the constant-time one
    assert calls == [(b"x", b"y")]


def test_missing_token_is_unauthorized(admin_token: Callable[[str | None], None]) -> None:
    admin_token(f"tok-{uuid.uuid4()}")
    with pytest.raises(Unauthorized):
        callers.authorize_operator({}, {"identity": {"sourceIp": "127.0.0.1"}})


def test_wrong_token_is_forbidden(admin_token: Callable[[str | None], None]) -> None:
    admin_token(f"tok-{uuid.uuid4()}")
    with pytest.raises(Forbidden):
        callers.authorize_operator({"Authorization": "Bearer nope"}, {})
    with pytest.raises(Forbidden):
        callers.authorize_operator({"Authorization": "Basic nope"}, {})


def test_a_token_does_not_fall_back_to_iam_identity(admin_token: Callable[[str | None], None]) -> None:
    # Given the local stack (a token is configured) and a request that claims an IAM caller
    admin_token(f"tok-{uuid.uuid4()}")
    # Then the claimed identity does not replace the token
    with pytest.raises(Unauthorized):
        callers.authorize_operator({}, {"identity": {"userArn": "arn:aws:iam::123456789012:user/ops"}})


def test_right_token_passes(admin_token: Callable[[str | None], None]) -> None:
    token = f"tok-{uuid.uuid4()}"
    admin_token(token)
    callers.authorize_operator({"authorization": f"Bearer {token}"}, {})


@pytest.mark.parametrize(
    "identity",
    [
        {"userArn": "arn:aws:iam::123456789012:user/ops"},
        {"caller": "AIDAEXAMPLE"},
        {"accessKey": "ASIAEXAMPLE"},
    ],
)
def test_without_a_token_an_iam_caller_passes(
    admin_token: Callable[[str | None], None], identity: dict[str, str]
) -> None:
    admin_token(None)
    callers.authorize_operator({}, {"identity": {"sourceIp": "198.51.100.1", **identity}})


@pytest.mark.parametrize(
    "context",
    [None, {}, {"identity": None}, {"identity": {"sourceIp": "198.51.100.1", "userArn": None, "caller": ""}}],
)
def test_without_a_token_and_without_an_iam_caller_is_forbidden(
    admin_token: Callable[[str | None], None], context: dict[str, Any] | None
) -> None:
    admin_token(None)
    with pytest.raises(Forbidden):
        callers.authorize_operator({"Authorization": "Bearer anything"}, context)


def test_route_answers_401_json_without_token(admin_token: TokenSetter, resolve: Resolve) -> None:
    admin_token(f"tok-{uuid.uuid4()}")
    response = resolve(api_event("GET", "/admin/probe"))
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "unauthorized"


def test_route_answers_403_json_with_wrong_token(admin_token: TokenSetter, resolve: Resolve) -> None:
    admin_token(f"tok-{uuid.uuid4()}")
    response = resolve(api_event("GET", "/admin/probe", headers={"Authorization": "Bearer wrong"}))
    assert response["statusCode"] == 403
    expected = {"error": {"code": "forbidden", "message": "the operator token is not valid"}}
    assert json.loads(response["body"]) == expected


def test_route_passes_with_right_token(admin_token: TokenSetter, resolve: Resolve) -> None:
    token = f"tok-{uuid.uuid4()}"
    admin_token(token)
    response = resolve(api_event("GET", "/admin/probe", headers={"Authorization": f"Bearer {token}"}))
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"ok": "yes"}


def test_route_in_aws_needs_iam_identity(admin_token: TokenSetter, resolve: Resolve) -> None:
    admin_token(None)
    refused = resolve(_iam_event({}))
    admitted = resolve(_iam_event({"userArn": "arn:aws:sts::123456789012:assumed-role/ops/alice"}))
    assert refused["statusCode"] == 403
    assert json.loads(refused["body"])["error"]["code"] == "forbidden"
    assert admitted["statusCode"] == 200

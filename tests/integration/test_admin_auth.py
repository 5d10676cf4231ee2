"""The admin gate through the real AdminApiFunction handler, against moto."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from lethe.settings import get_settings

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


@pytest.fixture
def operator_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = f"itest-{uuid.uuid4()}"
    monkeypatch.setenv("LETHE_ADMIN_TOKEN", token)
    get_settings.cache_clear()
    return token


@pytest.fixture
def openapi_event(sample_event: Callable[[str], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The sample admin event, pointed at /admin/openapi.json (a route that always exists)."""
    base = sample_event("admin_api.json")

    def build(authorization: str | None, identity: dict[str, str] | None = None) -> dict[str, Any]:
        event = copy.deepcopy(base)
        event.update(path="/admin/openapi.json", resource="/admin/openapi.json", httpMethod="GET")
        event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None
        event["requestContext"].update(resourcePath="/admin/openapi.json", httpMethod="GET")
        headers = {"Authorization": authorization} if authorization is not None else {}
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        event["requestContext"]["identity"].update(identity or {})
        return event

    return build


def _error_code(response: dict[str, Any]) -> str:
    return str(json.loads(response["body"])["error"]["code"])


def test_no_token_is_401(invoke: Invoke, operator_token: str, openapi_event: Callable[..., dict[str, Any]]) -> None:
    response = invoke("AdminApiFunction", openapi_event(None))
    assert response["statusCode"] == 401
    assert _error_code(response) == "unauthorized"


def test_wrong_token_is_403(invoke: Invoke, operator_token: str, openapi_event: Callable[..., dict[str, Any]]) -> None:
    response = invoke("AdminApiFunction", openapi_event(f"Bearer {operator_token}x"))
    assert response["statusCode"] == 403
    assert _error_code(response) == "forbidden"


def test_right_token_passes(invoke: Invoke, operator_token: str, openapi_event: Callable[..., dict[str, Any]]) -> None:
    response = invoke("AdminApiFunction", openapi_event(f"Bearer {operator_token}"))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["info"]["title"] == "Lethe admin"


def test_sample_event_list_requests_is_gated(
    invoke: Invoke, operator_token: str, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given the sample list event carrying a token that is not this deployment's
    event = sample_event("admin_api.json")
    # When it reaches the handler
    response = invoke("AdminApiFunction", event)
    # Then it is refused before any route runs
    assert response["statusCode"] == 403
    assert _error_code(response) == "forbidden"


def test_without_token_iam_caller_is_required(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, openapi_event: Callable[..., dict[str, Any]]
) -> None:
    # Given a deployment with no token (AWS: API Gateway's IAM authorizer admits callers)
    monkeypatch.delenv("LETHE_ADMIN_TOKEN", raising=False)
    get_settings.cache_clear()
    # When a call arrives without the identity the authorizer would have recorded, and one with it
    refused = invoke("AdminApiFunction", openapi_event(None))
    admitted = invoke(
        "AdminApiFunction", openapi_event(None, {"userArn": "arn:aws:sts::123456789012:assumed-role/ops/bob"})
    )
    # Then only the IAM-admitted one passes
    assert refused["statusCode"] == 403
    assert _error_code(refused) == "forbidden"
    assert admitted["statusCode"] == 200

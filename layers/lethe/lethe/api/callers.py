"""Who is calling an API: an operator (a bearer token on the local stack, an IAM-admitted caller in
AWS) or a controller. Shared by the admin, OpenDSR and public APIs, so none loads another's routes."""

from __future__ import annotations

import hmac
from typing import Any

from lethe.errors import Forbidden, Unauthorized
from lethe.settings import get_settings

# Fields API Gateway's AWS_IAM authorizer fills in requestContext.identity once it has admitted a signed call.
IAM_CALLER_FIELDS = ("userArn", "caller", "accessKey")


def bearer_token(headers: dict[str, str] | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, "" for another scheme, None when absent."""
    header = next((v for k, v in (headers or {}).items() if k.lower() == "authorization"), None)
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison, so the answer time says nothing about how much of the token was right."""
    return hmac.compare_digest(presented.encode(), expected.encode())


def iam_caller(request_context: dict[str, Any] | None) -> str | None:
    """The caller API Gateway's IAM authorizer recorded, or None when the call did not come through it."""
    identity = (request_context or {}).get("identity") or {}
    for field in IAM_CALLER_FIELDS:
        value = identity.get(field)
        if isinstance(value, str) and value.strip():
            return value
    return None


def authorize_operator(headers: dict[str, str] | None, request_context: dict[str, Any] | None) -> None:
    """Raise Unauthorized/Forbidden unless the call comes from an operator.

    With LETHE_ADMIN_TOKEN set (the local stack) a matching bearer token is required. Without it (AWS),
    the IAM authorizer must have admitted a caller; a missing identity means the route was reached some
    other way (a misconfigured method, a direct invoke), and that is refused rather than trusted."""
    expected = get_settings().admin_token
    if expected:
        token = bearer_token(headers)
        if token is None:
            raise Unauthorized("an operator bearer token is required")
        if not token or not token_matches(token, expected):
            raise Forbidden("the operator token is not valid")
        return
    if iam_caller(request_context) is None:
        raise Forbidden("admin routes require an IAM-signed call")

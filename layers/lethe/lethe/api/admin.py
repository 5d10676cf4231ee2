"""Routes of the admin API. In AWS, API Gateway checks IAM; locally the bearer token is checked here."""

from __future__ import annotations

import hmac

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from lethe.api import admin_consent, admin_holds, admin_requests, admin_retention
from lethe.errors import Forbidden, Unauthorized
from lethe.settings import get_settings


def require_operator(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
    """With LETHE_ADMIN_TOKEN set (the local stack), a matching bearer token is required.
    In AWS the token is unset and API Gateway's IAM authorizer has already admitted the caller."""
    expected = get_settings().admin_token
    if expected:
        header = app.current_event.headers.get("Authorization") or app.current_event.headers.get("authorization")
        if not header:
            raise Unauthorized("an operator bearer token is required")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
            raise Forbidden("the operator token is not valid")
    return next_middleware(app)


def register(app: APIGatewayRestResolver) -> None:
    app.use(middlewares=[require_operator])
    for module in (admin_requests, admin_holds, admin_consent, admin_retention):
        module.register(app)

"""Builds the Powertools REST resolver shared by the public and admin functions."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import Server

from lethe.api.errors import register_error_handlers

API_TITLE = "Lethe"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Privacy operations: data-subject requests (access, portability, rectification, erasure, "
    "restriction, objection, consent withdrawal, marketing opt-out, children's data, complaints), "
    "a consent ledger and one-click unsubscribe."
)


def build_resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    register_error_handlers(app)
    return app


def served_base_path(app: APIGatewayRestResolver) -> str:
    """The path the API is reached under for the current request: "/prod" on an execute-api URL, "" behind
    a custom domain or on the local stack without a stage. The same rule Powertools' Swagger UI uses for its
    `servers`, so "Try it out" and /openapi.json send calls to the same place."""
    return app._get_base_path()


def openapi_json(app: APIGatewayRestResolver, *, title: str = API_TITLE) -> str:
    return app.get_openapi_json_schema(
        title=title,
        version=API_VERSION,
        description=API_DESCRIPTION,
        openapi_version="3.1.0",
        servers=[Server(url=served_base_path(app) or "/")],
    )

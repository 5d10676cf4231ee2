"""Builds the Powertools REST resolver shared by the public and admin functions.

Request bodies are read in one place, before any route or parser sees them: `RequestEvent` decodes the
body strictly (bytes that are not UTF-8 are the caller's mistake, a 400) and `parse_json` refuses JSON
nested deeper than MAX_JSON_DEPTH (the standard parser recurses per level and would overflow the stack).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from lethe.api.errors import MAX_BODY_BYTES, register_error_handlers
from lethe.errors import MalformedBody, PayloadTooLarge

API_TITLE = "Lethe"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Privacy operations: data-subject requests (access, portability, rectification, erasure, "
    "restriction, objection, consent withdrawal, marketing opt-out, children's data, complaints), "
    "a consent ledger and one-click unsubscribe."
)
# No body Lethe takes nests deeper than a few levels; 32 leaves room and stays far from the stack limit.
MAX_JSON_DEPTH = 32


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text`, counted without parsing (brackets inside strings
    are not counted), so the count itself cannot overflow."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: str) -> Any:
    """The resolver's JSON deserializer: bounded in size and depth before the standard parser runs."""
    if len(text) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body exceeds {MAX_BODY_BYTES} bytes")
    if json_depth(text) > MAX_JSON_DEPTH:
        raise MalformedBody(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


class RequestEvent(APIGatewayProxyEvent):
    """The REST proxy event, with a body that is decoded once and strictly."""

    @cached_property
    def decoded_body(self) -> str | None:
        body = self.body
        if not body:
            return body
        try:
            raw = base64.b64decode(body.encode(), validate=True) if self.is_base64_encoded else None
        except (binascii.Error, ValueError) as exc:
            raise MalformedBody("the body is not valid base64") from exc
        if raw is None:
            return body
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBody("the body is not UTF-8 text") from exc


class LetheResolver(APIGatewayRestResolver):
    """The REST resolver with Lethe's strict body reading (the ALB resolver overrides the same hook)."""

    def _to_proxy_event(self, event: dict[str, Any]) -> RequestEvent:
        return RequestEvent(event, self._json_body_deserializer)


def build_resolver() -> APIGatewayRestResolver:
    app = LetheResolver(enable_validation=True, json_body_deserializer=parse_json)
    register_error_handlers(app)
    return app


def served_base_path(app: APIGatewayRestResolver) -> str:
    """The path the API is reached under for the current request: "/prod" on an execute-api URL, "" behind
    a custom domain or on the local stack without a stage. The same rule Powertools' Swagger UI uses for its
    `servers`, so "Try it out" and /openapi.json send calls to the same place."""
    return app._get_base_path()


def openapi_json(app: APIGatewayRestResolver, *, title: str = API_TITLE) -> str:
    # Powertools' OpenAPI models (a few hundred pydantic classes) load only when the document is asked for.
    from aws_lambda_powertools.event_handler.openapi.models import Server

    return app.get_openapi_json_schema(
        title=title,
        version=API_VERSION,
        description=API_DESCRIPTION,
        openapi_version="3.1.0",
        servers=[Server(url=served_base_path(app) or "/")],
    )


def serve_openapi(app: APIGatewayRestResolver, *, path: str, title: str = API_TITLE) -> None:
    """The API's OpenAPI document at `path`, generated when it is asked for."""

    @app.get(path, include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(200, content_types.APPLICATION_JSON, openapi_json(app, title=title))


def serve_swagger(
    app: APIGatewayRestResolver, *, path: str, title: str = API_TITLE, middlewares: Sequence[Callable[..., Any]] = ()
) -> None:
    """Powertools' Swagger UI page (and its `?format=json`), as `enable_swagger` serves it, but registered
    without loading the OpenAPI models: `enable_swagger` imports them when the route is registered, in
    every cold start; here they load when someone opens the page."""

    @app.get(path, include_in_schema=False, middlewares=list(middlewares))
    def swagger() -> Response[str]:
        from aws_lambda_powertools.event_handler.openapi import swagger_ui
        from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

        # Escaped so the document cannot close the page's <script> element.
        spec = openapi_json(app, title=title).replace("</", "<\\/")
        if (app.current_event.query_string_parameters or {}).get("format") == "json":
            return Response(200, content_types.APPLICATION_JSON, spec)
        assets = Path(swagger_ui.__file__).parent
        js = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
        css = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
        return Response(200, content_types.TEXT_HTML, generate_swagger_html(spec, js, css, "", None))

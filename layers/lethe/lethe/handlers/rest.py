"""The shell of the public and admin REST functions: one resolver with Lethe's body reading and error
map, the function's routes, its OpenAPI document, and a handler that registers each invocation's
context with intake's idempotency (a submission lock left by a timed-out invocation expires)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from lethe.api.resolver import API_TITLE, build_resolver, serve_openapi
from lethe.handlers.shell import make_tracer, start_function
from lethe.logic.intake import IDEMPOTENCY

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def rest_function(
    register: Callable[[APIGatewayRestResolver], None], *, openapi_path: str, title: str = API_TITLE
) -> tuple[APIGatewayRestResolver, Handler]:
    """Everything at INIT: settings and models, the resolver and every route (validation included);
    the OpenAPI document is generated only when `openapi_path` is asked for."""
    tracer = make_tracer()
    start_function()
    app = build_resolver()
    register(app)
    serve_openapi(app, path=openapi_path, title=title)

    @tracer.capture_lambda_handler(capture_response=False)
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        IDEMPOTENCY.register_lambda_context(context)
        return app.resolve(event, context)

    return app, handle

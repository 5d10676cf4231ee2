"""AdminApiFunction: operator actions. IAM-authorized in AWS; a bearer token on the local stack."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from lethe.api import admin
from lethe.api.resolver import build_resolver, openapi_json
from lethe.data.models import bind_models
from lethe.handlers.shell import make_tracer
from lethe.settings import get_settings

tracer = make_tracer()
bind_models(get_settings())
app = build_resolver()
admin.register(app)


@app.get("/admin/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, openapi_json(app, title="Lethe admin"))


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from lethe.logic.intake import IDEMPOTENCY

    IDEMPOTENCY.register_lambda_context(context)  # filing an inbox message submits through intake
    return app.resolve(event, context)

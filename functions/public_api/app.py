"""Public API: the request form, discovery, intake and verification, consents, unsubscribe."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from lethe.api import public
from lethe.api.resolver import build_resolver, openapi_json
from lethe.logic.intake import IDEMPOTENCY

logger = Logger()
app = build_resolver()
public.register(app)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, openapi_json(app))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)  # a submission lock left by a timed-out invocation expires
    return app.resolve(event, context)

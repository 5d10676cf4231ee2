"""Public API: the request form, discovery, intake and verification, consents, unsubscribe."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    from lethe.settings import adopt_invoke_url

    adopt_invoke_url(event)
    # The work (pynamodb, pydantic models, the inventory) loads on the first invocation, not at import.
    from lethe.handlers import public_api

    return public_api.handle(event, context)

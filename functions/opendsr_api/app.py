"""OpenDSR v2 processor API: controllers' requests, their status and cancellation, discovery."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    from lethe.settings import adopt_invoke_url

    adopt_invoke_url(event)
    # The work (pynamodb, pydantic models, the inventory) loads on the first invocation, not at import.
    from lethe.handlers import opendsr_api

    return opendsr_api.handle(event, context)

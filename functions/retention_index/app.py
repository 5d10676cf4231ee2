"""Keeps the retention index of dataset tables true, from their DynamoDB streams."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    # The work (pynamodb, pydantic models, the inventory) loads on the first invocation, not at import.
    from lethe.handlers import retention_index

    return retention_index.handle(event, context)

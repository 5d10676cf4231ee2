"""Applies retention to one dataset shard or scan segment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lethe.handlers import retention_worker

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return retention_worker.handle(event, context)

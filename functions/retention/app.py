"""Daily retention sweep: plans one task per dataset shard or scan segment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lethe.handlers import retention

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return retention.handle(event, context)

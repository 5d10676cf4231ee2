"""Daily deadline watcher: digest of due and overdue requests, OverdueRequests metric, expiry of unverified
requests."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lethe.handlers import deadline

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return deadline.handle(event, context)

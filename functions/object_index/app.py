"""Keeps the subject index of S3 datasets from their buckets' ObjectCreated events."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lethe.handlers import object_index

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return object_index.handle(event, context)

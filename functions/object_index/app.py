"""Keeps the subject index of S3 datasets from their buckets' ObjectCreated events."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    # The work (boto3 clients, the inventory) loads on the first invocation, not at import.
    from lethe.handlers import object_index

    return object_index.handle(event, context)

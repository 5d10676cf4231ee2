"""Delivers OpenDSR status callbacks, signed, to controllers' URLs (retried by the queue)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    from lethe.handlers import opendsr_callback

    return opendsr_callback.handle(event, context)

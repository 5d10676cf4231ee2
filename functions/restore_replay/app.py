"""Replays the erasure ledger onto a restored dataset table (CloudTrail restores and queued jobs)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from lethe.handlers import restore_replay

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return restore_replay.handle(event, context)

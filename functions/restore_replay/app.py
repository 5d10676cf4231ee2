"""Replays the erasure ledger onto a restored dataset table (CloudTrail restores and queued jobs)."""

from __future__ import annotations

import gc

gc.disable()  # until INIT ends: lethe.handlers.shell.finish_init

from typing import Any

from aws_lambda_powertools import Logger

from lethe.handlers import restore_replay
from lethe.handlers.shell import finish_init

logger = Logger()
finish_init()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return restore_replay.handle(event, context)

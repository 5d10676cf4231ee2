"""OpenDSR v2 processor API: controllers' requests, their status and cancellation, discovery."""

from __future__ import annotations

import gc

gc.disable()  # until INIT ends: lethe.handlers.shell.finish_init

from typing import Any

from aws_lambda_powertools import Logger

from lethe.handlers import opendsr_api
from lethe.handlers.shell import finish_init
from lethe.settings import adopt_invoke_url

logger = Logger()
finish_init()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    adopt_invoke_url(event)
    return opendsr_api.handle(event, context)

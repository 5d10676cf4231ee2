"""OpenDsrCallbackFunction: one status callback per message, signed and POSTed (lethe.logic.opendsr_callbacks).

A failed delivery is a partial batch failure: the message comes back after a delay that grows with
each receive (its visibility timeout is set to `backoff_seconds`), and after the queue's
maxReceiveCount it goes to the dead-letter queue.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from lethe.data import queues
from lethe.handlers.shell import make_tracer, start_function
from lethe.logic.opendsr_callbacks import CallbackFailed, CallbackMessage, backoff_seconds, deliver
from lethe.settings import get_settings

logger = Logger()
tracer = make_tracer()
start_function()
# Failed deliveries are reported item by item even when all fail: each one has its own backoff set.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    message = CallbackMessage.model_validate_json(record.body)
    attempt = int(record.attributes.approximate_receive_count or 1)
    try:
        return deliver(message, attempt=attempt)
    except CallbackFailed:
        with contextlib.suppress(ClientError, BotoCoreError):  # without it, the queue's own timeout applies
            queues.hold_back(get_settings().opendsr_callback_queue_url, record.receipt_handle, backoff_seconds(attempt))
        raise


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

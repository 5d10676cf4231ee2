"""RecipientNoticeFunction: delivers one queued recipient notice per record; a failed attempt comes
back after an exponential backoff, and the queue's last receive marks the notice failed (then the
message goes to RecipientNoticeDLQ, whose alarm tells the operator)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent_function,
)

from lethe.data import idempotency as idempotency_store
from lethe.data import queues
from lethe.handlers.shell import make_tracer, start_function
from lethe.logic import recipients
from lethe.logic.recipients import NoticeMessage, NoticeNotDelivered
from lethe.settings import get_settings

logger = Logger()
tracer = make_tracer()
start_function()
# A batch whose every notice failed is answered with its failures, like any other (no exception).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
persistence = idempotency_store.persistence_layer()  # through Lethe's one DynamoDB client
# A notice delivered once is never sent again on redelivery; a failed attempt leaves no record.
config = IdempotencyConfig(
    event_key_jmespath="[request_id, notice_id]",
    expires_after_seconds=30 * 24 * 3600,
    payload_validation_jmespath="notice_id",
)


@idempotent_function(data_keyword_argument="message", config=config, persistence_store=persistence)
def deliver(message: NoticeMessage, receive: int) -> dict[str, Any]:
    return recipients.deliver_queued(message, receive=receive)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    message = NoticeMessage.model_validate_json(record.body)
    receive = int(record.attributes.approximate_receive_count or 1)
    try:
        return deliver(message=message, receive=receive)
    except NoticeNotDelivered:
        delay = recipients.backoff_seconds(receive)
        queue_url = get_settings().recipient_notice_queue_url
        if queue_url:
            # Back off before the next receive; the redrive policy counts receives up to the DLQ.
            queues.hold_back(queue_url, record.receipt_handle, delay)
        raise


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

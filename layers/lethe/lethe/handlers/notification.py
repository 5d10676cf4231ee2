"""NotificationFunction: sends policy-change notices, one per subscriber, idempotently."""

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
from lethe.data.mail import send_email
from lethe.handlers.shell import start_function
from lethe.logic.policy_versions import deliver_notices, notice_email, parse_notice

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)
start_function()
persistence = idempotency_store.persistence_layer()  # through Lethe's one DynamoDB client
# One email per (version, recipient): the key holds only the version and the recipient's HMAC reference.
idempotency = IdempotencyConfig(event_key_jmespath="[version, recipient_ref]", expires_after_seconds=90 * 24 * 3600)


@idempotent_function(data_keyword_argument="notice_key", persistence_store=persistence, config=idempotency)
def send_notice(*, notice_key: dict[str, str], email: str, version: str, summary: str) -> dict[str, str]:
    subject, text, headers = notice_email(version, summary, email)
    return {"message_id": send_email(email, subject, text, headers=headers)}


def record_handler(record: SQSRecord) -> None:
    result = deliver_notices(parse_notice(record.body), send_notice)
    logger.info("policy notices delivered", extra={"message_id": record.message_id, **result.model_dump()})


def handle(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

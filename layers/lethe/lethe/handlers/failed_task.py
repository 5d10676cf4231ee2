"""FailedTaskFunction: marks a request failed when one of its tasks reaches the dead-letter queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lethe.handlers.shell import start_function
from lethe.logic import fulfilment_resume
from lethe.logic.fulfilment import DatasetTask

logger = Logger()
start_function()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    task = DatasetTask.model_validate_json(record.body)
    logger.info("dead task", extra={"message_id": record.message_id, "request_id": task.request_id})
    fulfilment_resume.mark_failed(task.request_id, task.dataset, round_=task.round)


def handle(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

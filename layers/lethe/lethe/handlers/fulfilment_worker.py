"""FulfilmentWorkerFunction: carries out one dataset task of a data-subject request."""

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
from lethe.handlers.shell import make_tracer, start_function
from lethe.logic import fulfilment, manual_tasks
from lethe.logic.fulfilment import FINALIZE_KIND, MANUAL_DONE_KIND, DatasetTask

OPENDSR_START = "opendsr_start"  # lethe.logic.opendsr.START_KIND, without importing it for every task

logger = Logger()
tracer = make_tracer()
start_function()
processor = BatchProcessor(event_type=EventType.SQS)
persistence = idempotency_store.persistence_layer()  # through Lethe's one DynamoDB client
# Keyed on the request, the dataset and the identity round only: a redelivery, or a duplicate queued
# with another attempt number, returns the stored result instead of running again.
config = IdempotencyConfig(event_key_jmespath="[request_id, dataset, round]", expires_after_seconds=7 * 24 * 3600)


@idempotent_function(data_keyword_argument="task", config=config, persistence_store=persistence)
def carry_out(task: DatasetTask) -> dict[str, Any]:
    return fulfilment.run_task(task.request_id, task.dataset, attempt=task.attempt, round_=task.round)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    task = DatasetTask.model_validate_json(record.body)
    logger.info("task received", extra={"message_id": record.message_id, "request_id": task.request_id})
    if task.kind == OPENDSR_START:
        # A controller's request whose cancellation window is over (conditional: a cancelled one stays so).
        from lethe.logic import opendsr

        return opendsr.start(task.request_id)
    if task.kind == FINALIZE_KIND:
        # Advancing is safe to repeat (conditional writes), so it needs no idempotency record.
        fulfilment.advance(task.request_id)
        return {"request_id": task.request_id, "advanced": True}
    if task.kind == MANUAL_DONE_KIND:
        # A manual dataset's owner completed its task: recording it done is a conditional update.
        return manual_tasks.finish(task.request_id, task.dataset, task.round)
    return carry_out(task=task)


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

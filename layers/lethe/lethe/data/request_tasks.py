"""Fulfilment's bookkeeping in RequestsTable: a request's dataset tasks, their results, the rounds
opened by identities learned through links, and the final notices sent; and the messages that
carry the work (the work queue, the customer events).

A task's result is a row of the request's partition (sk TASK#<task>); a notice sent is a row
NOTICE#<notice>. Recording a task done and opening a round are each one transaction with their
audit record, so neither is ever recorded without it. What the tasks mean and when a request moves
on is lethe.logic.fulfilment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from lethe.aws import back_off, client, error_code, retried, transaction_connection
from lethe.data import audit, requests
from lethe.data.models import AuditRecord, RequestEventRecord, RequestSummaryRecord
from lethe.data.requests import SUMMARY, DataSubjectRequest, new_event, pk_of
from lethe.domain import Status
from lethe.errors import ConflictingWrite
from lethe.settings import get_settings

TASK_PREFIX = "TASK#"
NOTICE_PREFIX = "NOTICE#"
TASK_KIND = "dataset_task"
CUSTOMER_EVENT = "DataSubjectRequestForCustomer"
_CHAIN_ATTEMPTS = 20
_MARK_ATTEMPTS = 10
_SEND_ROUNDS = 5


@retried("read request")
def read_request(request_id: str) -> DataSubjectRequest:
    """The request, read consistently; retried in place on a transient error. Raises RequestNotFound."""
    return requests.get(request_id)


# ---------------------------------------------------------------- task results


def save_result(request_id: str, task: str, detail: dict[str, Any]) -> None:
    """The task's result row (written again, identically, by a redelivery)."""
    RequestEventRecord(
        pk_of(request_id),
        f"{TASK_PREFIX}{task}",
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        kind=TASK_KIND,
        actor="system",
        detail=detail,
    ).save()


@retried("read task results")
def task_results(request_id: str) -> dict[str, dict[str, Any]]:
    """task -> its result, for every task of the request recorded so far (one consistent Query)."""
    rows = RequestEventRecord.query(
        pk_of(request_id), RequestEventRecord.sk.startswith(TASK_PREFIX), consistent_read=True
    )
    return {row.sk.removeprefix(TASK_PREFIX): dict(row.detail or {}) for row in rows}


def record_done(
    request_id: str, task: str, audit_details: dict[str, Any], subject_ref: str | None
) -> RequestSummaryRecord | None:
    """ADD datasets_done, DELETE datasets_pending, only if the task is still pending: exactly one
    delivery of a task records it. The audit record is written in the same transaction, so a
    recorded task never lacks it. Returns the summary as updated, or None if it was already done."""
    for _ in range(_CHAIN_ATTEMPTS):
        record = audit.prepare(
            "request.dataset_done",
            request_id=request_id,
            subject_ref=subject_ref,
            dataset=task,
            details=audit_details,
        )
        summary = RequestSummaryRecord(pk_of(request_id), SUMMARY)
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(
                    summary,
                    actions=[
                        RequestSummaryRecord.datasets_done.add({task}),
                        RequestSummaryRecord.datasets_pending.delete({task}),
                    ],
                    condition=RequestSummaryRecord.datasets_pending.contains(task),
                )
                tx.save(record, condition=AuditRecord.seq.does_not_exist())
        except TransactWriteError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            if task not in requests.get(request_id).datasets_pending:
                return None
            continue  # the audit chain moved on: prepare the next record again
        summary.refresh(consistent_read=True)
        return summary
    raise ConflictingWrite("the audit chain is contended; the task will be redelivered")


def open_round(
    request: DataSubjectRequest,
    next_round: int,
    names: list[str],
    entries: list[tuple[str, Any, int]],
    audit_details: dict[str, Any],
) -> bool:
    """Record the learned identities (`entries`) and the next round's tasks, with the audit record
    and the round's event row, in one transaction, on condition that the request is still in the
    round it was read in with nothing pending. False if another delivery opened it first."""
    current = request.identity_round
    same_round = (
        RequestSummaryRecord.identity_round == current
        if current > 1
        else RequestSummaryRecord.identity_round.does_not_exist()
    )
    for _ in range(_CHAIN_ATTEMPTS):
        record = audit.prepare(
            "request.identities_followed",
            request_id=request.request_id,
            subject_ref=request.subject_ref,
            details=audit_details,
        )
        summary = RequestSummaryRecord(pk_of(request.request_id), SUMMARY)
        # The round's event row goes in the same transaction, so history and audit always agree.
        event = new_event(
            request.request_id,
            "identities_followed",
            detail={"round": next_round, "tasks": names},
            now=datetime.now(UTC),
        )
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(
                    summary,
                    actions=[
                        RequestSummaryRecord.identities.set([list(e) for e in entries]),
                        RequestSummaryRecord.identity_round.set(next_round),
                        RequestSummaryRecord.datasets_pending.set(set(names)),
                        RequestSummaryRecord.updated_at.set(datetime.now(UTC).isoformat(timespec="seconds")),
                    ],
                    condition=(RequestSummaryRecord.status == Status.in_progress.value)
                    & RequestSummaryRecord.datasets_pending.does_not_exist()
                    & same_round,
                )
                tx.save(record, condition=AuditRecord.seq.does_not_exist())
                tx.save(event, condition=RequestEventRecord.sk.does_not_exist())
        except TransactWriteError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            latest = requests.get(request.request_id)
            if latest.identity_round != current or latest.datasets_pending or latest.status is not Status.in_progress:
                return False
            continue  # the audit chain moved on: prepare the next record again
        return True
    raise ConflictingWrite("the audit chain is contended; the task will be redelivered")


def add_failed(request_id: str, dataset: str) -> None:
    """Name one more dataset among a failed request's failures."""
    RequestSummaryRecord(pk_of(request_id), SUMMARY).update(
        actions=[RequestSummaryRecord.datasets_failed.add({dataset})]
    )


# ---------------------------------------------------------------- final notices


def notice_sent(request_id: str, notice: str) -> bool:
    """Whether the request's final notice `notice` is recorded as sent."""
    pk, sk = pk_of(request_id), f"{NOTICE_PREFIX}{notice}"
    return bool(RequestEventRecord.count(pk, RequestEventRecord.sk == sk, consistent_read=True))


def record_notice_sent(request_id: str, notice: str) -> None:
    """Record that the notice went. SES takes no idempotency token, so this write, made right after
    the send, is retried in place: only a send whose record could not be written ten times over is
    ever repeated."""
    row = RequestEventRecord(
        pk_of(request_id),
        f"{NOTICE_PREFIX}{notice}",
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        kind="notice_sent",
        actor="system",
        detail={"notice": notice},
    )
    for attempt in range(_MARK_ATTEMPTS):
        try:
            row.save()
            return
        except PutError:
            if attempt == _MARK_ATTEMPTS - 1:
                raise
            back_off(attempt)


# ---------------------------------------------------------------- messages


def send_work(bodies: Iterable[str]) -> int:
    """Messages onto the work queue (SendMessageBatch, 10 at a time; entries SQS refuses are sent
    again, a few rounds, before it is an error). Returns how many were sent."""
    sqs = client("sqs")
    url = get_settings().work_queue_url
    bodies = list(bodies)
    for start_at in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start_at : start_at + 10])]
        for _ in range(_SEND_ROUNDS):
            failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed") or []
            if not failed:
                break
            retry_ids = {f["Id"] for f in failed}
            entries = [e for e in entries if e["Id"] in retry_ids]
        else:
            raise RuntimeError("the work queue refused some tasks")
    return len(bodies)


def send_one(body: str) -> None:
    """One message onto the work queue."""
    client("sqs").send_message(QueueUrl=get_settings().work_queue_url, MessageBody=body)


def tell_customer(detail: dict[str, Any]) -> None:
    """A request routed to the customer a dataset's data is held for, as an event on Lethe's bus."""
    client("events").put_events(
        Entries=[
            {
                "Source": "lethe",
                "DetailType": CUSTOMER_EVENT,
                "Detail": json.dumps(detail),
                "EventBusName": get_settings().event_bus,
            }
        ]
    )

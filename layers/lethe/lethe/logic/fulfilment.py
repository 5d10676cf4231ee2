"""Fulfilment: carries a verified request out across every dataset of the inventory.

- `start` moves a pending request to in_progress, records every dataset found by the email as pending
  and queues one SQS task per dataset.
- `run_task` does one dataset's part (lethe.logic.fulfilment_work: export, erase, rectify, restrict).
  Its effects are conditional writes, so a redelivered task applies nothing twice; it records its
  completion with a conditional update (ADD datasets_done, DELETE datasets_pending) and the task that
  empties datasets_pending advances the request: the identities its datasets linked to open the next
  round of tasks (lethe.logic.identities), and once nothing new is learned the request is finalized
  (lethe.logic.fulfilment_finish). An erasure is then read again (lethe.logic.erasure_proof): a
  residue fails the request instead of certifying it.
- A task in the dead-letter queue and an operator's retry are lethe.logic.fulfilment_resume.

Task results are kept as rows of the request's partition (lethe.data.request_tasks), so the finalizer
can build the export and the erasure certificate from them. No personal data reaches the logs or the audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import Field

from lethe.data import request_tasks
from lethe.data.models import RequestSummaryRecord
from lethe.data.request_tasks import TASK_KIND
from lethe.domain import Model, Status
from lethe.errors import RequestNotFound
from lethe.inventory import Inventory, get_inventory
from lethe.keys import key_ring
from lethe.logic import identities, manual_tasks, own_data
from lethe.logic.fulfilment_finish import finalize
from lethe.logic.fulfilment_work import DATASET_TYPES, ERASURE_TYPES, WORK
from lethe.logic.identities import Lookup, parse_task, task_name
from lethe.logic.requests import DataSubjectRequest, get_request, transition

logger = Logger(child=True)

# A message asking the worker to advance (next round, or finalize) a request whose tasks are all done.
FINALIZE_KIND = "finalize"
# A message asking the worker to record a manual dataset's task its owner completed (lethe.logic.manual_tasks).
MANUAL_DONE_KIND = "manual_done"


class DatasetTask(Model):
    """The body of one work-queue message."""

    kind: str = TASK_KIND
    request_id: str = Field(min_length=1, max_length=64)
    dataset: str = Field(min_length=1, max_length=63)
    attempt: int = Field(default=1, ge=1)
    # The identity round: datasets found by an identity learned through links run in a later round.
    round: int = Field(default=1, ge=1, le=1000)

    @property
    def task(self) -> str:
        return task_name(self.dataset, self.round)


# ------------------------------------------------------------------ fan-out


def datasets_for(request: DataSubjectRequest, inventory: Inventory) -> list[str]:
    """The first round's tasks: the datasets found by the email the request was verified by, and by
    any identity it came with (a controller's customer id). A request that knows no address (a
    controller's hash that no dataset matched) searches nothing."""
    if request.type not in DATASET_TYPES or request.email is None:
        return []
    return identities.first_round(inventory, request)


def start(request_id: str, *, actor: str = "system") -> None:
    """Move a pending request to in_progress and queue one task per dataset. A request already in
    progress is left alone (a second start is a no-op)."""
    request = get_request(request_id)
    if request.status is Status.in_progress:
        return
    names = datasets_for(request, get_inventory())
    transition(
        request_id,
        Status.in_progress,
        allowed_from={Status.pending},
        actor=actor,
        detail={"datasets": len(names)},
        datasets_pending=set(names) or None,
        datasets_done=None,
        datasets_failed=None,
        **own_data.on_start(erasure=request.type in ERASURE_TYPES),
    )
    if names:
        queue_tasks(request_id, names, attempt=1)
    else:
        advance(request_id)


def queue_tasks(request_id: str, names: Iterable[str], *, attempt: int) -> int:
    """One message per task (a dataset in a round) on the work queue (SendMessageBatch, 10 at a time)."""
    return request_tasks.send_work(
        DatasetTask(
            request_id=request_id, dataset=parse_task(name)[0], round=parse_task(name)[1], attempt=attempt
        ).model_dump_json()
        for name in names
    )


def queue_finalize(request_id: str) -> None:
    """Leave advancing a request whose tasks are all done to the worker: finalizing reads the vault and
    erases earlier exports (the worker's rights alone), and a failure is redelivered, not lost."""
    task = DatasetTask(kind=FINALIZE_KIND, request_id=request_id, dataset="*")
    request_tasks.send_one(task.model_dump_json())


# ------------------------------------------------------------------ one task


def run_task(request_id: str, dataset_name: str, *, attempt: int = 1, round_: int = 1) -> dict[str, Any]:
    """Carry out one dataset's part of a request in one identity round. Idempotent: a task already
    done is a no-op, and every effect is conditional on the item still being as read."""
    task = task_name(dataset_name, round_)
    try:
        request = get_request(request_id)
    except RequestNotFound:
        # Nothing can ever carry this task out: drop it rather than retry it into the dead-letter queue.
        logger.warning("task for an unknown request dropped", request_id=request_id, dataset=dataset_name)
        return {"dataset": dataset_name, "skipped": "no such request"}
    if task in request.datasets_done:
        _advance_if_last(request)
        return {"dataset": dataset_name, "skipped": "already done"}
    if task not in request.datasets_pending or request.status not in (Status.in_progress, Status.failed):
        return {"dataset": dataset_name, "skipped": f"request is {request.status.value}"}
    inventory = get_inventory()
    if dataset_name not in inventory.datasets:
        result: dict[str, Any] = {"action": "none", "note": "dataset no longer in the inventory"}
    else:
        dataset = inventory.dataset(dataset_name)
        if dataset.is_manual:
            # A person does this dataset's part: the task stays pending until its owner completes it.
            return manual_tasks.open_task(request, dataset, round_)
        lookup = Lookup(request, dataset, inventory, round_)
        result = WORK[request.type](request, dataset, lookup, key_ring(), datetime.now(UTC))
        # Names and counts only: the linked values stay in the request's LINKS# rows.
        result = {**result, "found_through": dataset.subject.identity, "links": lookup.persist()}
    if round_ > 1:
        result["round"] = round_
    _save_task_result(request_id, task, result, attempt=attempt)
    details = {k: v for k, v in result.items() if k != "changes"}
    updated = _record_done(request_id, task, details, request.subject_ref)
    if updated is None:
        return {"dataset": dataset_name, "skipped": "already done"}
    logger.info("dataset task done", request_id=request_id, dataset=dataset_name, action=result.get("action"))
    if not updated.datasets_pending and updated.status == Status.in_progress.value:
        advance(request_id)
    return {"dataset": dataset_name, **{k: v for k, v in result.items() if k != "changes"}}


def complete_task(
    request: DataSubjectRequest, task: str, result: dict[str, Any], *, audit_details: dict[str, Any]
) -> bool:
    """Record a task done outside run_task (a manual dataset's owner did it) exactly as run_task does,
    and advance the request if it was the last. False if it was already recorded."""
    _save_task_result(request.request_id, task, result, attempt=1)
    updated = _record_done(request.request_id, task, audit_details, request.subject_ref)
    if updated is None:
        return False
    if not updated.datasets_pending and updated.status == Status.in_progress.value:
        advance(request.request_id)
    return True


def _record_done(
    request_id: str, task: str, audit_details: dict[str, Any], subject_ref: str | None
) -> RequestSummaryRecord | None:
    """Record the task done, with its audit record, exactly once (lethe.data.request_tasks.record_done)."""
    return request_tasks.record_done(request_id, task, audit_details, subject_ref)


def _save_task_result(request_id: str, task: str, result: dict[str, Any], *, attempt: int) -> None:
    detail = {"dataset": parse_task(task)[0], "attempt": attempt, **{k: v for k, v in result.items() if k != "changes"}}
    request_tasks.save_result(request_id, task, detail)


# ------------------------------------------------------------------ rounds


def _advance_if_last(request: DataSubjectRequest) -> None:
    if request.status is Status.in_progress and not request.datasets_pending:
        advance(request.request_id)


def advance(request_id: str) -> None:
    """A round's last task is done: open the next round for the datasets found by identities the
    round's items linked to, or, when nothing new was learned, finalize. Safe to run again: the
    round opens by a conditional update on the round number, so two deliveries cannot both open it."""
    # Advancing is many reads and a few conditional writes: each is retried in place on a transient
    # error, so one throttled call does not throw the whole finalization back onto the queue.
    request = request_tasks.read_request(request_id)
    if request.status is not Status.in_progress or request.datasets_pending:
        return
    inventory = get_inventory()
    tasks = request_tasks.task_results(request_id)
    # Earlier rounds' links were followed when those rounds ended: only this round's can be new.
    linked = any(r.get("links") for t, r in tasks.items() if parse_task(t)[1] == request.identity_round)
    fresh = identities.newly_learned(request, inventory) if linked else []
    if not fresh:
        finalize(request_id, request=request, tasks=tasks)
        return
    next_round = request.identity_round + 1
    kinds = {identity for identity, _ in fresh}
    names = sorted(task_name(n, next_round) for n, d in inventory.datasets.items() if d.subject.identity in kinds)
    entries = [*request.identities, *((identity, value, next_round) for identity, value in fresh)]
    if open_round(request, next_round, names, entries):
        queue_tasks(request_id, names, attempt=1)


def open_round(
    request: DataSubjectRequest, next_round: int, names: list[str], entries: list[tuple[str, Any, int]]
) -> bool:
    """Record the learned identities and the next round's tasks, with an audit record of their
    counts (never the values), in one transaction. False if another delivery opened it first."""
    details = {"round": next_round, "identities": identities.counts(entries), "datasets": len(names)}
    return request_tasks.open_round(request, next_round, names, entries, details)

"""Fulfilment's failures and how a request resumes: a task in the dead-letter queue fails the request
(`mark_failed`), an operator's `retry` re-queues what is not done (or erases again what the proof of
erasure found left), and the deadline watcher's `resume_stalled` moves on a request a step that
failed half-way left with nothing queued.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from lethe.data import request_tasks
from lethe.domain import Status
from lethe.errors import ConflictingWrite, InvalidTransition, RequestNotFound
from lethe.inventory import get_inventory
from lethe.logic import fulfilment, identities
from lethe.logic.fulfilment_work import DATASET_TYPES, ERASURE_TYPES
from lethe.logic.identities import task_name
from lethe.logic.requests import add_event, get_request, list_by_status, transition

logger = Logger(child=True)


def mark_failed(request_id: str, dataset_name: str, *, round_: int = 1) -> None:
    """A task reached the dead-letter queue: the request becomes failed, naming the dataset."""
    task = task_name(dataset_name, round_)
    try:
        request = get_request(request_id)
    except RequestNotFound:
        logger.warning("dead task for an unknown request dropped", request_id=request_id, dataset=dataset_name)
        return
    finalizing = request.status is Status.in_progress and not request.datasets_pending
    if task in request.datasets_done and not finalizing:
        return
    # Either the task itself kept failing, or it was done and the finalization it ran kept failing:
    # both leave the request failed, for an operator to retry (a retry with nothing left finalizes).
    if request.status is Status.in_progress:
        try:
            transition(
                request_id,
                Status.failed,
                allowed_from={Status.in_progress},
                actor="system",
                detail={"dataset": dataset_name},
                datasets_failed=set(request.datasets_failed) | {dataset_name},
            )
            return
        except (InvalidTransition, ConflictingWrite):
            request = get_request(request_id)
    if request.status is Status.failed:
        request_tasks.add_failed(request_id, dataset_name)
        add_event(request_id, "dataset_failed", detail={"dataset": dataset_name})


# A request that has not moved for this long is stalled: longer than a task's redeliveries take
# (5 receives of a 900 s visibility timeout) would be too long for the daily watcher to matter.
STALLED_AFTER = timedelta(hours=1)


def resume_stalled(now: datetime, *, stalled_after: timedelta = STALLED_AFTER) -> int:
    """The safety net the deadline watcher runs. A step that failed half-way can leave a request with
    nothing queued to move it on: verified or approved (pending) but not started, or in_progress with
    its tasks never queued or its finalization never done. The caller's retry cannot tell (a second
    verify is a conflict), so such a request is resumed here: started, its pending datasets queued
    again (a task already done is a no-op), or finalized. Returns how many were resumed."""
    resumed = 0
    for status in (Status.pending, Status.in_progress):
        cursor: str | None = None
        while True:
            page, cursor = list_by_status(status, limit=100, cursor=cursor)
            for listed in page:
                try:
                    resumed += _resume(listed.request_id, status, now, stalled_after)
                except Exception:  # one request's failure must not keep the others stalled
                    logger.exception(
                        "stalled request not resumed; the next run tries again", request_id=listed.request_id
                    )
            if cursor is None:
                break
    return resumed


def _resume(request_id: str, status: Status, now: datetime, stalled_after: timedelta) -> int:
    request = get_request(request_id)
    if request.status is not status or now - request.updated_at < stalled_after:
        return 0
    if request.status is Status.pending:
        fulfilment.start(request_id)
    elif request.datasets_pending:
        fulfilment.queue_tasks(request_id, sorted(request.datasets_pending), attempt=2)
    elif request.datasets_done or request.type not in DATASET_TYPES:
        fulfilment.queue_finalize(request_id)
    else:
        return 0  # a state fulfilment never leaves (no dataset recorded at all): an operator's to judge
    logger.info("stalled request resumed", request_id=request_id, status=status.value)
    return 1


def retry(request_id: str, *, actor: str) -> list[str]:
    """Resume a failed request: re-queue only the tasks of its current round that are not done (a
    request that failed its proof of erasure is read again, and certified only if nothing remains)."""
    request = get_request(request_id)
    if request.status is Status.in_progress and not request.datasets_pending:
        # A retry whose finalization failed half-way (every dataset done): advancing is what is left.
        fulfilment.queue_finalize(request_id)
        return []
    if request.status is not Status.failed:
        raise InvalidTransition(f"only a failed request can be retried; this one is {request.status.value}")
    if request.datasets_pending or request.datasets_done:
        names = sorted(request.datasets_pending)
    else:
        names = [n for n in fulfilment.datasets_for(request, get_inventory()) if n not in request.datasets_done]
    transition(
        request_id,
        Status.in_progress,
        allowed_from={Status.failed},
        actor=actor,
        detail={"retry": names},
        datasets_pending=set(names) or None,
        datasets_failed=None,
    )
    if names:
        fulfilment.queue_tasks(request_id, names, attempt=2)
    elif request.type in ERASURE_TYPES and request.datasets_failed:
        return _erase_again(request_id, sorted(request.datasets_failed))
    else:
        fulfilment.queue_finalize(request_id)
    return names


def _erase_again(request_id: str, failed: list[str]) -> list[str]:
    """Every task was done, yet the request failed naming datasets: its proof of erasure found items
    left (written after their dataset's pass, or changed under it), or its finalization kept failing.
    Those datasets are erased once more, in one more round and for every known value of their
    identity, by the worker; the proof then reads every dataset again before certifying."""
    request = get_request(request_id)
    inventory = get_inventory()
    failed = [name for name in failed if name in inventory.datasets]
    if not failed:
        fulfilment.queue_finalize(request_id)
        return []
    next_round = request.identity_round + 1
    kinds = sorted({inventory.dataset(name).subject.identity for name in failed})
    again = [(kind, value, next_round) for kind in kinds for value in identities.values_for(request, kind, None)]
    names = [task_name(name, next_round) for name in failed]
    if fulfilment.open_round(request, next_round, names, [*request.identities, *again]):
        fulfilment.queue_tasks(request_id, names, attempt=2)
    return names

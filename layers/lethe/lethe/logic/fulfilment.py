"""Fulfilment: carries a verified request out across every dataset of the inventory.

- `start` moves a pending request to in_progress, records every dataset found by the email as pending
  and queues one SQS task per dataset.
- `run_task` does one dataset's part (export, erase, rectify, restrict). Its effects are conditional
  writes, so a redelivered task applies nothing twice; it records its completion with a conditional
  update (ADD datasets_done, DELETE datasets_pending) and the task that empties datasets_pending
  advances the request: the identities its datasets linked to open the next round of tasks
  (lethe.logic.identities), and once nothing new is learned the request is finalized. An erasure is
  then read again (lethe.logic.erasure_proof): a residue fails the request instead of certifying it.
- `mark_failed` (from the dead-letter queue) and `retry` (an operator) resume from where it stopped.

Task results are kept as rows of the request's partition (sk TASK#<dataset>), so the finalizer can
build the export and the erasure certificate from them. No personal data reaches the logs or the audit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from lethe.aws import back_off, client, error_code, retry_transient, transaction_connection
from lethe.data import audit, datasets, ledger, stores, vault
from lethe.data.expiry import parse_instant
from lethe.data.models import AuditRecord, RequestEventRecord, RequestSummaryRecord
from lethe.data.requests import SUMMARY, new_event, pk_of
from lethe.domain import RequestType, Status
from lethe.errors import ConflictingWrite, InvalidTransition, RequestNotFound
from lethe.inventory import Action, Dataset, Inventory, get_inventory
from lethe.keys import KeyRing, key_ring
from lethe.logic import (
    certificates,
    erasure_proof,
    exports,
    identities,
    legal_holds,
    manual_tasks,
    own_data,
    recipients,
    suppression,
)
from lethe.logic.identities import Lookup, parse_task, task_name
from lethe.logic.reports import completed_in_part
from lethe.logic.requests import DataSubjectRequest, add_event, get_request, list_by_status, transition
from lethe.settings import get_settings

logger = Logger(child=True)

TASK_KIND = "dataset_task"
# A message asking the worker to advance (next round, or finalize) a request whose tasks are all done.
FINALIZE_KIND = "finalize"
# A message asking the worker to record a manual dataset's task its owner completed (lethe.logic.manual_tasks).
MANUAL_DONE_KIND = "manual_done"
TASK_PREFIX = "TASK#"
CUSTOMER_EVENT = "DataSubjectRequestForCustomer"

EXPORT_TYPES = frozenset({RequestType.access, RequestType.portability})
ERASURE_TYPES = frozenset({RequestType.erasure, RequestType.child_data_report})
# Types that touch each dataset; the others are settled once, when the request is finalized.
DATASET_TYPES = EXPORT_TYPES | ERASURE_TYPES | {RequestType.rectification, RequestType.restriction}


class DatasetTask(BaseModel):
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
    sqs = client("sqs")
    url = get_settings().work_queue_url
    names = list(names)
    for start_at in range(0, len(names), 10):
        chunk = names[start_at : start_at + 10]
        entries = [
            {
                "Id": str(i),
                "MessageBody": DatasetTask(
                    request_id=request_id, dataset=parse_task(name)[0], round=parse_task(name)[1], attempt=attempt
                ).model_dump_json(),
            }
            for i, name in enumerate(chunk)
        ]
        for _ in range(5):
            failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed") or []
            if not failed:
                break
            retry_ids = {f["Id"] for f in failed}
            entries = [e for e in entries if e["Id"] in retry_ids]
        else:
            raise RuntimeError("the work queue refused some tasks")
    return len(names)


def queue_finalize(request_id: str) -> None:
    """Leave advancing a request whose tasks are all done to the worker: finalizing reads the vault and
    erases earlier exports (the worker's rights alone), and a failure is redelivered, not lost."""
    task = DatasetTask(kind=FINALIZE_KIND, request_id=request_id, dataset="*")
    client("sqs").send_message(QueueUrl=get_settings().work_queue_url, MessageBody=task.model_dump_json())


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
        result = _WORK[request.type](request, dataset, lookup, key_ring(), datetime.now(UTC))
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
    request_id: str, dataset_name: str, audit_details: dict[str, Any], subject_ref: str | None
) -> RequestSummaryRecord | None:
    """ADD datasets_done, DELETE datasets_pending, only if the dataset is still pending: exactly one
    delivery of a task records it. The audit record is written in the same transaction, so a
    recorded task never lacks it. Returns the summary as updated, or None if it was already done."""
    for _ in range(20):
        record = audit.prepare(
            "request.dataset_done",
            request_id=request_id,
            subject_ref=subject_ref,
            dataset=dataset_name,
            details=audit_details,
        )
        summary = RequestSummaryRecord(pk_of(request_id), SUMMARY)
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(
                    summary,
                    actions=[
                        RequestSummaryRecord.datasets_done.add({dataset_name}),
                        RequestSummaryRecord.datasets_pending.delete({dataset_name}),
                    ],
                    condition=RequestSummaryRecord.datasets_pending.contains(dataset_name),
                )
                tx.save(record, condition=AuditRecord.seq.does_not_exist())
        except TransactWriteError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            if dataset_name not in get_request(request_id).datasets_pending:
                return None
            continue  # the audit chain moved on: prepare the next record again
        summary.refresh(consistent_read=True)
        return summary
    raise ConflictingWrite("the audit chain is contended; the task will be redelivered")


def _save_task_result(request_id: str, task: str, result: dict[str, Any], *, attempt: int) -> None:
    RequestEventRecord(
        pk_of(request_id),
        f"{TASK_PREFIX}{task}",
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        kind=TASK_KIND,
        actor="system",
        detail={
            "dataset": parse_task(task)[0],
            "attempt": attempt,
            **{k: v for k, v in result.items() if k != "changes"},
        },
    ).save()


def task_results(request_id: str) -> dict[str, dict[str, Any]]:
    rows = RequestEventRecord.query(
        pk_of(request_id), RequestEventRecord.sk.startswith(TASK_PREFIX), consistent_read=True
    )
    return {row.sk.removeprefix(TASK_PREFIX): dict(row.detail or {}) for row in rows}


# ------------------------------------------------------------------ per type


def _customers_of(dataset: Dataset, items: Iterable[dict[str, Any]], found: set[str]) -> Iterator[dict[str, Any]]:
    for item in items:
        if dataset.customer and item.get(dataset.customer) is not None:
            found.add(str(item[dataset.customer]))
        yield item


def _tell_customers(request: DataSubjectRequest, dataset: Dataset, customers: set[str]) -> int:
    """Data held for a customer: the request is routed to it as an event (no raw email in it)."""
    if dataset.controller != "customer" or not customers:
        return 0
    detail = {
        "request_id": request.request_id,
        "type": request.type.value,
        "dataset": dataset.name,
        "customer_ids": sorted(customers),
        "subject_ref": request.subject_ref,
    }
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
    return len(customers)


def _export(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    customers: set[str] = set()
    count = exports.write_part(
        request.request_id, dataset, _customers_of(dataset, lookup.items(), customers), part=lookup.task
    )
    routed = _tell_customers(request, dataset, customers)
    return {"action": "export", "items": count, "customers_told": routed}


def _purge_at(dataset: Dataset, item: dict[str, Any], now: datetime) -> datetime:
    """The end of the item's retention (never before now): when the vault may let it go."""
    rule = dataset.retention
    since = parse_instant(item.get(rule.since)) if rule is not None else None
    if rule is None or since is None:
        return now
    return max(rule.after.after(since), now)


def _erase(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    assert request.email is not None
    holds = legal_holds.holds_for_email(request.email, dataset.name)
    action = dataset.on_erasure
    kept_because = None
    if holds:
        # A legal hold wins over erasure: the items are isolated, never deleted or altered.
        action = Action.isolate
        kept_because = "legal hold: " + "; ".join(h.reason for h in holds)
    elif action is Action.isolate:
        kept_because = (dataset.retention.basis if dataset.retention and dataset.retention.basis else None) or (
            "kept until the end of its statutory retention"
        )
    customers: set[str] = set()
    # Every item is read, and its links recorded, before anything is written: once masked or
    # deleted, an item can no longer say which account it belonged to.
    items = list(_customers_of(dataset, lookup.items(), customers))
    lookup.persist()
    counts = {"found": 0, "deleted": 0, "anonymized": 0, "isolated": 0, "unchanged": 0, "retention_ended": 0}
    kept_until: datetime | None = None
    kept: dict[tuple[str, str], int] = {}
    # The erasure ledger knows the subject before anything is erased, each item once it is.
    erased = ledger.Erasure("erasure", request.subject_ref, request.request_id)
    ledger.record_subject(request.subject_ref, reference=request.request_id, now=now)
    if dataset.in_s3:
        return _erase_rows(request, dataset, lookup, ring, now, action, items, erased, holds, kept_because)
    store = stores.store_for(dataset, ring)
    if action is Action.delete:
        removed = store.delete(dataset, list(lookup.values), items, erased=erased)
        counts["found"] += removed.found
        counts["deleted"] = removed.deleted
    elif action is Action.anonymize:
        pseudonyms = own_data.pseudonyms_for(request.request_id)  # never the deployment's keys
        masked = store.mask(dataset, list(lookup.values), items, pseudonyms, now, erased=erased)
        counts["found"] += masked.found
        counts["anonymized"] += masked.anonymized
        counts["unchanged"] += masked.unchanged
    else:
        subject_ref = ring.subject_ref(request.email)
        reason = "legal_hold" if holds else "statutory_retention"
        for item in items:
            counts["found"] += 1
            purge_at = _purge_at(dataset, item, now)
            done = vault.isolate_item(
                dataset,
                datasets.key_of(dataset, item),
                item,
                reason=reason,
                purge_at=purge_at,
                subject_ref=subject_ref,
                request_id=request.request_id,
                hold_ids=[h.hold_id for h in holds] or None,
                now=now,
                erased=erased,
            )
            counts["isolated" if done else "unchanged"] += 1
            # What the certificate may truthfully say: until when each item is kept, or that its period is over.
            if done and purge_at <= now:
                counts["retention_ended"] += 1
            elif done:
                kept_until = max(kept_until or purge_at, purge_at)
            # What the vault keeps and until when (a held item is purged no earlier than this).
            until = purge_at.date().isoformat()
            kept[(reason, until)] = kept.get((reason, until), 0) + 1
    routed = _tell_customers(request, dataset, customers)
    return {
        "action": action.value,
        **counts,
        "kept": [{"reason": r, "until": u, "items": n} for (r, u), n in sorted(kept.items())] or None,
        "kept_because": kept_because if counts["isolated"] else None,
        "kept_until": kept_until.isoformat(timespec="seconds") if kept_until else None,
        "hold_ids": [h.hold_id for h in holds],
        "customers_told": routed,
        "controller": dataset.controller,
    }


def _erase_rows(
    request: DataSubjectRequest,
    dataset: Dataset,
    lookup: Lookup,
    ring: KeyRing,
    now: datetime,
    action: Action,
    items: list[dict[str, Any]],
    erased: ledger.Erasure,
    holds: list[legal_holds.Hold],
    kept_because: str | None,
) -> dict[str, Any]:
    """An erasure in a store of rows inside objects (lethe.data.stores): the same decision as for a
    table, carried out by rewriting the objects that hold the subject. Rows under a legal hold
    cannot be moved to the vault one by one: they are left exactly as they are, and said so."""
    store = stores.store_for(dataset, ring)
    values = list(lookup.values)
    if action is Action.isolate:
        return {
            "action": "kept",
            "found": len(items),
            "deleted": 0,
            "anonymized": 0,
            "isolated": 0,
            "unchanged": len(items),
            "kept_because": kept_because,
            "hold_ids": [h.hold_id for h in holds],
            "controller": dataset.controller,
        }
    if action is Action.delete:
        done = store.delete(dataset, values, items, erased=erased)
    else:
        done = store.mask(dataset, values, items, own_data.pseudonyms_for(request.request_id), now, erased=erased)
    return {
        "action": action.value,
        **done.counts(),
        "found": max(done.found, len(items)),
        "isolated": 0,
        "objects_rewritten": done.objects_rewritten,
        "versions_deleted": done.versions_deleted,
        # Rows that did not parse are kept as they are: named per object, for a person to look at.
        "unparseable": dict(sorted(done.unparseable.items())) or None,
        "hold_ids": [],
        "customers_told": 0,
        "controller": dataset.controller,
    }


def _rectify(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    """Apply corrections to the fields of this dataset a subject may correct (never one that identifies
    whose an item is: its key, its subject or link attributes). Old and new values go to the request's
    events (never the audit)."""
    if dataset.in_s3:
        return _not_in_objects("rectify", lookup)
    corrections = dict(request.corrections or {})
    key_attributes = set(datasets.table_key(dataset).attributes)
    correctable = get_inventory().correctable_fields(dataset.name)
    allowed = {name: value for name, value in corrections.items() if name in correctable and name not in key_attributes}
    items = list(lookup.items())
    lookup.persist()
    if not allowed:
        return {"action": "rectify", "found": 0, "rectified": 0, "fields": []}
    attribute = dataset.subject.attribute
    found = rectified = 0
    for item in items:
        found += 1
        to_set = {name: value for name, value in allowed.items() if item.get(name) != value}
        if not to_set:
            continue
        done = datasets.update_item(
            dataset,
            item,
            to_set=to_set,
            condition_attribute=attribute,
            condition_value=item[attribute],
            unchanged=[name for name in to_set if name in item],
        )
        if done:
            rectified += 1
            add_event(
                request.request_id,
                "rectified",
                detail={
                    "dataset": dataset.name,
                    "key": {k: str(v) for k, v in datasets.key_of(dataset, item).items()},
                    "changes": {name: {"old": _plain(item.get(name)), "new": value} for name, value in to_set.items()},
                },
            )
    return {"action": "rectify", "found": found, "rectified": rectified, "fields": sorted(allowed)}


def _plain(value: Any) -> Any:
    return json.loads(exports.dumps(value)) if value is not None else None


def _restrict(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    """Mark each item restricted: retention and marketing skip items carrying the attribute."""
    if dataset.in_s3:
        return _not_in_objects("restrict", lookup)
    attribute = dataset.subject.attribute
    found = marked = 0
    items = list(lookup.items())
    lookup.persist()
    for item in items:
        found += 1
        if item.get(datasets.RESTRICTED_ATTRIBUTE) == request.request_id:
            continue
        if datasets.update_item(
            dataset,
            item,
            to_set={datasets.RESTRICTED_ATTRIBUTE: request.request_id},
            condition_attribute=attribute,
            condition_value=item[attribute],
        ):
            marked += 1
    return {"action": "restrict", "found": found, "restricted": marked}


def _not_in_objects(action: str, lookup: Lookup) -> dict[str, Any]:
    """Rows inside objects are not corrected or marked one by one: the task says so (counts only)."""
    found = sum(1 for _ in lookup.items())
    lookup.persist()
    return {"action": action, "found": found, "note": f"{action} is not carried out on rows inside objects"}


def _nothing(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    return {"action": "none"}


_WORK: dict[RequestType, Callable[[DataSubjectRequest, Dataset, Lookup, KeyRing, datetime], dict[str, Any]]] = {
    RequestType.access: _export,
    RequestType.portability: _export,
    RequestType.erasure: _erase,
    RequestType.child_data_report: _erase,
    RequestType.rectification: _rectify,
    RequestType.restriction: _restrict,
    RequestType.objection: _nothing,
    RequestType.marketing_opt_out: _nothing,
    RequestType.consent_withdrawal: _nothing,
    RequestType.complaint: _nothing,
}


# ------------------------------------------------------------------ finalize


def _advance_if_last(request: DataSubjectRequest) -> None:
    if request.status is Status.in_progress and not request.datasets_pending:
        advance(request.request_id)


def advance(request_id: str) -> None:
    """A round's last task is done: open the next round for the datasets found by identities the
    round's items linked to, or, when nothing new was learned, finalize. Safe to run again: the
    round opens by a conditional update on the round number, so two deliveries cannot both open it."""
    # Advancing is many reads and a few conditional writes: each is retried in place on a transient
    # error, so one throttled call does not throw the whole finalization back onto the queue.
    request = retry_transient(get_request, request_id, what="read request")
    if request.status is not Status.in_progress or request.datasets_pending:
        return
    inventory = get_inventory()
    tasks = retry_transient(task_results, request_id, what="read task results")
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
    if _open_round(request, next_round, names, entries):
        queue_tasks(request_id, names, attempt=1)


def _open_round(
    request: DataSubjectRequest, next_round: int, names: list[str], entries: list[tuple[str, Any, int]]
) -> bool:
    """Record the learned identities and the next round's tasks, with an audit record of their
    counts (never the values), in one transaction. False if another delivery opened it first."""
    current = request.identity_round
    same_round = (
        RequestSummaryRecord.identity_round == current
        if current > 1
        else RequestSummaryRecord.identity_round.does_not_exist()
    )
    for _ in range(20):
        record = audit.prepare(
            "request.identities_followed",
            request_id=request.request_id,
            subject_ref=request.subject_ref,
            details={"round": next_round, "identities": identities.counts(entries), "datasets": len(names)},
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
            latest = get_request(request.request_id)
            if latest.identity_round != current or latest.datasets_pending or latest.status is not Status.in_progress:
                return False
            continue  # the audit chain moved on: prepare the next record again
        return True
    raise ConflictingWrite("the audit chain is contended; the task will be redelivered")


def by_dataset(results: dict[str, dict[str, Any]], inventory: Inventory) -> dict[str, dict[str, Any]]:
    """Task results (one per dataset and round) merged per dataset: counts added up, and each
    dataset of the inventory present, with the identity it is found through."""
    merged: dict[str, dict[str, Any]] = {}
    for task, result in sorted(results.items(), key=lambda kv: parse_task(kv[0])[1]):
        name = parse_task(task)[0]
        into = merged.setdefault(name, {})
        for key, value in result.items():
            if key in _COUNTS and isinstance(value, int | float):
                into[key] = int(into.get(key) or 0) + int(value)
            elif key == "kept" and value:
                into["kept"] = [*(into.get("kept") or []), *value]
            elif key not in into or into[key] in (None, "none"):
                into[key] = value
    for name, dataset in inventory.datasets.items():
        entry = merged.setdefault(name, {"action": "none", "found": 0, "reached": False})
        entry.setdefault("found_through", dataset.subject.identity)
        entry.setdefault("reached", True)
    return merged


_COUNTS = (
    "items",
    "found",
    "deleted",
    "anonymized",
    "isolated",
    "unchanged",
    "rectified",
    "restricted",
    "customers_told",
)


def finalize(
    request_id: str, *, request: DataSubjectRequest | None = None, tasks: dict[str, dict[str, Any]] | None = None
) -> None:
    """Settle the request once every dataset is done: the export and its link, the erasure
    certificate, suppression and consent, then completed. Safe to run again after a crash.
    `request` and `tasks`, when given, were just read by the caller (no second read)."""
    request = request or retry_transient(get_request, request_id, what="read request")
    if request.status is not Status.in_progress or request.datasets_pending:
        return
    inventory = get_inventory()
    tasks = retry_transient(task_results, request_id, what="read task results") if tasks is None else tasks
    results = by_dataset(tasks, inventory) if tasks else {}
    now = datetime.now(UTC)
    if request.type in ERASURE_TYPES and not _proven_erased(request, inventory, results):
        return
    outcome: dict[str, Any] = {"datasets": {name: _summary(result) for name, result in results.items()}}
    email = request.email
    # Art. 19: each notified recipient of each dataset touched is told once (tried now, retried by a queue).
    told = retry_transient(recipients.tell, request, results, inventory, what="tell recipients")
    if told:
        outcome["recipients"] = [
            t.model_dump(include={"recipient", "dataset", "channel", "state", "told_at"}) for t in told
        ]
    if request.type in EXPORT_TYPES:
        own = retry_transient(own_data.export_sections, request, what="read Lethe's own data")
        counts = exports.assemble(
            request_id,
            inventory,
            request_type=request.type.value,
            now=now,
            parts=_parts(tasks),
            found_through={n: r["found_through"] if r.get("reached") else None for n, r in results.items()},
            own=own,
            by_hand={n: r["by_hand"] for n, r in results.items() if r.get("by_hand")},
        )
        link = exports.export_link(request_id)
        outcome["export"] = {"items": sum(counts.values()), "link_ttl_seconds": get_settings().export_link_ttl_seconds}
        if email:
            _notify_once(
                request_id, "export_link", lambda: certificates.send_export_link(email, request, link, results)
            )
    elif request.type in ERASURE_TYPES:
        if email:
            erased_own = retry_transient(own_data.erase_own_copies, request, now, what="erase Lethe's own copies")
            outcome["lethe"] = erased_own
            retry_transient(suppression.suppress, email, reason="erasure", source=request_id, what="suppress")
            _notify_once(
                request_id,
                "erasure_certificate",
                lambda: certificates.send_erasure_certificate(
                    email, request, results, now=now, own=erased_own, told=told
                ),
            )
    elif request.type in (RequestType.objection, RequestType.marketing_opt_out, RequestType.consent_withdrawal):
        if email:
            _withdraw_marketing(email, request_id)
        add_event(request_id, "consent_withdrawn", detail={"type": request.type.value, "purposes": ["marketing_email"]})
    elif request.type in (RequestType.rectification, RequestType.restriction) and email:
        _notify_once(request_id, "completion", lambda: certificates.send_completion(email, request, results, told=told))
    # After an erasure, the request itself keeps no way to reach the person: only the HMAC reference.
    forget_contact = (
        {"email": None, "name": None, "details": None, "corrections": None, "identities": None, "agent": None}
        if request.type in ERASURE_TYPES
        else {}
    )
    try:
        transition(
            request_id,
            Status.completed,
            allowed_from={Status.in_progress},
            actor="system",
            # The audit record says whether anything was kept back (CCPA § 7102 "in part"; lethe.logic.reports).
            detail={"in_part": completed_in_part(outcome)},
            outcome=outcome,
            **forget_contact,
        )
    except (InvalidTransition, ConflictingWrite):
        logger.info("request already finalized", request_id=request_id)
    if request.type in ERASURE_TYPES:
        identities.forget_links(request_id)


def _parts(tasks: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The export part files of each dataset: one per round it was read in."""
    parts: dict[str, list[str]] = {}
    for task in sorted(tasks, key=lambda t: parse_task(t)[1]):
        parts.setdefault(parse_task(task)[0], []).append(task)
    return parts


def _proven_erased(request: DataSubjectRequest, inventory: Inventory, results: dict[str, dict[str, Any]]) -> bool:
    """Read every dataset again for every identity of the subject. Nothing may remain in a live
    table (what is kept is in the vault, with its reason and date). A residue fails the request,
    naming the datasets, instead of certifying it; an operator's retry reads them again."""
    left = erasure_proof.remaining(request, inventory)
    for name, count in left.items():
        results.setdefault(name, {})["remaining"] = count
    residue = {name: count for name, count in sorted(left.items()) if count}
    if not residue:
        return True
    logger.warning("erasure not certified: items remain", request_id=request.request_id, datasets=sorted(residue))
    try:
        transition(
            request.request_id,
            Status.failed,
            allowed_from={Status.in_progress},
            actor="system",
            detail={"residue": residue},
            datasets_failed=set(residue),
        )
    except (InvalidTransition, ConflictingWrite):
        logger.info("request already moved on", request_id=request.request_id)
    return False


NOTICE_PREFIX = "NOTICE#"
_MARK_ATTEMPTS = 10


def _notify_once(request_id: str, notice: str, send: Callable[[], object]) -> None:
    """Send the subject's final notice once, however often finalization runs: a row NOTICE#<notice>
    in the request's partition records that it went. Finalization can fail after the email and run
    again on redelivery; without the row the subject would get the email again. SES takes no
    idempotency token, so the row is written right after the send and that write is retried in
    place: only a send whose record could not be written ten times over is ever repeated."""
    key = (pk_of(request_id), f"{NOTICE_PREFIX}{notice}")
    if RequestEventRecord.count(key[0], RequestEventRecord.sk == key[1], consistent_read=True):
        return
    send()
    row = RequestEventRecord(
        *key,
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


def _withdraw_marketing(email: str, request_id: str) -> None:
    from lethe.logic import consent

    consent.withdraw_marketing(email, source=request_id)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "action",
        "items",
        "found",
        "deleted",
        "anonymized",
        "isolated",
        "rectified",
        "restricted",
        "kept_because",
        "kept",
        "found_through",
        "remaining",
        "by_hand",
    )
    return {k: result[k] for k in keep if result.get(k) is not None}


# ------------------------------------------------------------------ failure and retry


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
        RequestSummaryRecord(pk_of(request_id), SUMMARY).update(
            actions=[RequestSummaryRecord.datasets_failed.add({dataset_name})]
        )
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
        start(request_id)
    elif request.datasets_pending:
        queue_tasks(request_id, sorted(request.datasets_pending), attempt=2)
    elif request.datasets_done or request.type not in DATASET_TYPES:
        queue_finalize(request_id)
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
        queue_finalize(request_id)
        return []
    if request.status is not Status.failed:
        raise InvalidTransition(f"only a failed request can be retried; this one is {request.status.value}")
    if request.datasets_pending or request.datasets_done:
        names = sorted(request.datasets_pending)
    else:
        names = [n for n in datasets_for(request, get_inventory()) if n not in request.datasets_done]
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
        queue_tasks(request_id, names, attempt=2)
    elif request.type in ERASURE_TYPES and request.datasets_failed:
        return _erase_again(request_id, sorted(request.datasets_failed))
    else:
        queue_finalize(request_id)
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
        queue_finalize(request_id)
        return []
    next_round = request.identity_round + 1
    kinds = sorted({inventory.dataset(name).subject.identity for name in failed})
    again = [(kind, value, next_round) for kind in kinds for value in identities.values_for(request, kind, None)]
    names = [task_name(name, next_round) for name in failed]
    if _open_round(request, next_round, names, [*request.identities, *again]):
        queue_tasks(request_id, names, attempt=2)
    return names

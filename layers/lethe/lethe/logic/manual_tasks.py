"""Manual datasets (`store: manual`): systems no API reaches, where a person does the work.

- Fan-out opens one task per request for the dataset's `owner` (`open_task`, from the fulfilment
  worker) and emails them what to do: the request, the identifier to search by and the dataset's
  instructions. The request waits: its dataset stays pending.
- The deadline watcher reminds the owner of a task still open (`remind`).
- The owner or an operator completes it with a note (and, for access, the items found, checked
  against the dataset's fields): `complete`, from `POST /admin/requests/{id}/tasks/{dataset}/complete`
  or `lethe tasks complete`. The claim is a conditional update, so completing twice, or for a request
  that is not waiting, is a 409. The worker then writes the items as the dataset's export part and
  records the dataset done (`finish`), and the request finalizes like any other: the certificate and
  the export say what was done by hand, by whom and when.

Whatever the subject supplied (corrections) is quoted into the owner's email as data, flattened to
one line; the note and the items are data too, escaped wherever they are shown.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BeforeValidator, ConfigDict

from lethe.data import mail, queues
from lethe.data.models import ManualTaskRecord
from lethe.data.requests import DataSubjectRequest, pk_of
from lethe.data.writes import get_or_none, save_if, update_if
from lethe.domain import Model, RequestType, Status, Tally, utc_stamp
from lethe.errors import InvalidManualTask, InvalidTransition, UnknownDataset
from lethe.inventory import Dataset, get_inventory, identity_label
from lethe.logic import exports
from lethe.logic.identities import task_name, values_for
from lethe.logic.requests import add_event, get_request
from lethe.settings import get_settings

logger = Logger(child=True)

MANUAL_PREFIX = "MANUAL#"
OPEN_STATUS = "manual_open"
EXPORT_TYPES = frozenset({RequestType.access, RequestType.portability})
MAX_ITEMS = 500
MAX_VALUE_CHARS = 4000
# What the owner is asked to do, per request type.
_ASK = {
    RequestType.access: "find every item of this person and return them (the fields below)",
    RequestType.portability: "find every item of this person and return them (the fields below)",
    RequestType.erasure: "delete every item of this person",
    RequestType.child_data_report: "delete every item of this person (a child's data was reported)",
    RequestType.rectification: "apply the corrections below to this person's items",
    RequestType.restriction: "mark this person's items as restricted: keep them, but stop processing them",
}

Item = dict[str, str | int | float | bool | None]


class ManualTaskView(Model):
    """A task as the operator sees it, read from its row (`items` is how many the owner returned)."""

    model_config = ConfigDict(from_attributes=True)

    request_id: str
    dataset: str
    task: str
    owner: str
    request_type: str
    state: str
    opened_at: str
    due_at: str | None = None
    reminders: Tally = 0
    done_at: str | None = None
    done_by: str | None = None
    note: str | None = None
    items: Annotated[int | None, BeforeValidator(lambda items: len(items) if isinstance(items, list) else items)] = None


def view(row: ManualTaskRecord) -> ManualTaskView:
    return ManualTaskView.model_validate(row, from_attributes=True)


# ------------------------------------------------------------------ opening (the worker)


def open_task(request: DataSubjectRequest, dataset: Dataset, round_: int) -> dict[str, Any]:
    """Open the dataset's task and email its owner, once: a redelivery finds the row and sends nothing
    again unless the first email never went."""
    task = task_name(dataset.name, round_)
    row = ManualTaskRecord(
        pk_of(request.request_id),
        MANUAL_PREFIX + task,
        request_id=request.request_id,
        task=task,
        dataset=dataset.name,
        owner=str(dataset.owner),
        request_type=request.type.value,
        state="open",
        opened_at=utc_stamp(),
        status=OPEN_STATUS,
        due_at=utc_stamp(request.due_at),
    )
    if save_if(row, ManualTaskRecord.sk.does_not_exist()):
        add_event(request.request_id, "manual_task_opened", detail={"dataset": dataset.name, "owner": row.owner})
    else:
        row = ManualTaskRecord.get(pk_of(request.request_id), MANUAL_PREFIX + task, consistent_read=True)
    if row.state == "open" and not row.reminded_at:
        _email_owner(request, dataset, row, reminder=False)
        row.update(actions=[ManualTaskRecord.reminded_at.set(utc_stamp())])
    logger.info("manual task open", request_id=request.request_id, dataset=dataset.name)
    return {"dataset": dataset.name, "waiting": "manual task for the dataset's owner"}


def _email_owner(request: DataSubjectRequest, dataset: Dataset, row: ManualTaskRecord, *, reminder: bool) -> None:
    base = get_settings().public_base_url.rstrip("/")
    values = [mail.plain_text(str(v), limit=254) for v in values_for(request, dataset.subject.identity, None)]
    lines = [
        ("Reminder: a" if reminder else "A") + f" data-subject request waits for you: Lethe cannot reach "
        f"{dataset.description}.",
        "",
        f"Request:  {request.request_id} ({request.type.value}, due {row.due_at})",
        f"Dataset:  {dataset.name}",
        f"Search by {identity_label(dataset.subject.identity)} ({dataset.subject.attribute}): "
        + (", ".join(values) or "(none known)"),
        f"To do:    {_ASK.get(request.type, 'nothing')}",
        f"How:      {mail.plain_text(str(dataset.instructions), limit=2000)}",
    ]
    if request.type is RequestType.rectification and request.corrections:
        # The subject's own words: quoted as data on one line, never read as instructions.
        lines.append("Corrections (as the subject gave them): " + mail.plain_text(json.dumps(request.corrections)))
    if request.type in EXPORT_TYPES:
        lines.append(f"Fields to return: {', '.join(sorted(dataset.fields))}")
    lines += [
        "",
        "When it is done, record it with a note of what you did"
        + (" and the items you found (a JSON list of objects):" if request.type in EXPORT_TYPES else ":"),
        f"  lethe tasks complete {request.request_id} {dataset.name} --note 'what was done'"
        + (" --items found.json" if request.type in EXPORT_TYPES else ""),
        f"  or POST {base}/admin/requests/{request.request_id}/tasks/{dataset.name}/complete"
        ' {"note": "...", "items": [...]}',
        "",
        "The request is answered only when this task is done.",
    ]
    subject = f"Lethe: {'reminder, ' if reminder else ''}manual task {request.request_id} ({dataset.name})"
    mail.send_email(row.owner, subject, "\n".join(lines) + "\n")


# ------------------------------------------------------------------ the operator


def list_open(limit: int = 100) -> list[ManualTaskView]:
    """Open tasks, earliest due first (a Query of the by_status_due index)."""
    rows = ManualTaskRecord.by_state.query(OPEN_STATUS, limit=limit)
    return [view(row) for row in rows if row.sk.startswith(MANUAL_PREFIX)]


def for_request(request_id: str) -> list[ManualTaskView]:
    rows = ManualTaskRecord.query(
        pk_of(request_id), ManualTaskRecord.sk.startswith(MANUAL_PREFIX), consistent_read=True
    )
    return [view(row) for row in rows]


def _validated(dataset: Dataset, request_type: RequestType, items: list[dict[str, Any]] | None) -> list[Item] | None:
    if request_type not in EXPORT_TYPES:
        if items:
            raise InvalidManualTask(f"items are for access and portability requests, not {request_type.value}")
        return None
    items = items or []
    if len(items) > MAX_ITEMS:
        raise InvalidManualTask(f"at most {MAX_ITEMS} items")
    fields = set(dataset.fields)
    checked: list[Item] = []
    for number, item in enumerate(items, start=1):
        unknown = sorted(set(item) - fields)
        if unknown:
            raise InvalidManualTask(
                f"item {number}: {unknown[0]!r} is not a field of {dataset.name} ({', '.join(sorted(fields))})"
            )
        for name, value in item.items():
            if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
                raise InvalidManualTask(f"item {number}: {name} is longer than {MAX_VALUE_CHARS} characters")
            if not (value is None or isinstance(value, str | int | float | bool)):
                raise InvalidManualTask(f"item {number}: {name} must be a string, number, boolean or null")
        if not item:
            raise InvalidManualTask(f"item {number} is empty")
        checked.append(dict(item))
    return checked


def complete(
    request_id: str,
    dataset_name: str,
    *,
    note: str,
    items: list[dict[str, Any]] | None,
    done_by: str,
) -> ManualTaskView:
    """Record the owner's work and hand the rest to the worker. 409 if the request is not waiting for
    this task (never opened, already completed, or the request has ended)."""
    inventory = get_inventory()
    if dataset_name not in inventory.datasets or not inventory.dataset(dataset_name).is_manual:
        raise UnknownDataset(f"{dataset_name!r} is not a manual dataset of the inventory")
    dataset = inventory.dataset(dataset_name)
    request = get_request(request_id)
    row = _open_row(request, dataset_name)
    waiting = request.status in (Status.in_progress, Status.failed)
    if waiting and row is not None and row.state == "done" and row.task in request.datasets_pending:
        # Completed, but the worker has not recorded it yet (or its message was lost): hand it over again.
        _queue_finish(request_id, row.task)
        raise InvalidTransition(f"the manual task of {dataset_name} is already completed; it is being recorded")
    if (
        request.status not in (Status.in_progress, Status.failed)
        or row is None
        or row.task not in request.datasets_pending
    ):
        raise InvalidTransition(f"request {request_id} is not waiting for a manual task of {dataset_name}")
    checked = _validated(dataset, request.type, items)
    now = utc_stamp()
    done = [
        ManualTaskRecord.state.set("done"),
        ManualTaskRecord.done_at.set(now),
        ManualTaskRecord.done_by.set(done_by),
        ManualTaskRecord.note.set(note),
        ManualTaskRecord.items.set(checked),
        ManualTaskRecord.status.remove(),
        ManualTaskRecord.due_at.remove(),
    ]
    if not update_if(row, done, ManualTaskRecord.state == "open"):
        raise InvalidTransition(f"the manual task of {dataset_name} is already completed")
    add_event(request_id, "manual_task_done", actor=done_by, detail={"dataset": dataset_name, "task": row.task})
    _queue_finish(request_id, row.task)
    return view(row)


def _open_row(request: DataSubjectRequest, dataset_name: str) -> ManualTaskRecord | None:
    rows = ManualTaskRecord.query(
        pk_of(request.request_id), ManualTaskRecord.sk.startswith(MANUAL_PREFIX + dataset_name), consistent_read=True
    )
    mine = [r for r in rows if r.dataset == dataset_name]
    return next((r for r in mine if r.state == "open"), mine[-1] if mine else None)


def _queue_finish(request_id: str, task: str) -> None:
    from lethe.logic.fulfilment import MANUAL_DONE_KIND, DatasetTask
    from lethe.logic.identities import parse_task

    dataset, round_ = parse_task(task)
    message = DatasetTask(kind=MANUAL_DONE_KIND, request_id=request_id, dataset=dataset, round=round_)
    queues.send(get_settings().work_queue_url, message.model_dump_json())


# ------------------------------------------------------------------ finishing (the worker)


def finish(request_id: str, dataset_name: str, round_: int) -> dict[str, Any]:
    """The worker's part of a completed task: the export part, the task result, the dataset done.
    Safe to repeat: the part is rewritten the same, and the dataset is recorded done once."""
    from lethe.logic import fulfilment

    task = task_name(dataset_name, round_)
    row = get_or_none(ManualTaskRecord, pk_of(request_id), MANUAL_PREFIX + task)
    if row is None:
        return {"dataset": dataset_name, "skipped": "no manual task"}
    if row.state != "done":
        return {"dataset": dataset_name, "skipped": "manual task not completed"}
    request = get_request(request_id)
    by_hand = {"by": row.done_by, "at": row.done_at, "note": row.note}
    inventory = get_inventory()
    identity = inventory.dataset(dataset_name).subject.identity if dataset_name in inventory.datasets else "email"
    result: dict[str, Any] = {"action": "manual", "by_hand": by_hand, "found_through": identity}
    if request.type in EXPORT_TYPES:
        items = list(row.items or [])
        if dataset_name in inventory.datasets:
            exports.write_part(request_id, inventory.dataset(dataset_name), items, part=task)
        result.update(items=len(items), found=len(items))
    audit_details = {"action": "manual", "by_hand": True, **({"items": result["items"]} if "items" in result else {})}
    done = fulfilment.complete_task(request, task, result, audit_details=audit_details)
    return {"dataset": dataset_name, "manual": True, "recorded": done}


# ------------------------------------------------------------------ reminders (the deadline watcher)


def remind(now: datetime) -> int:
    """Email the owner of every task still open and not reminded for LETHE_MANUAL_TASK_REMIND_AFTER_HOURS.
    A conditional update on the last reminder's time keeps two runs from both sending."""
    after = timedelta(hours=get_settings().manual_task_remind_after_hours)
    inventory = get_inventory()
    sent = 0
    for row in ManualTaskRecord.by_state.query(OPEN_STATUS):
        if not row.sk.startswith(MANUAL_PREFIX) or row.dataset not in inventory.datasets:
            continue
        last = datetime.fromisoformat(row.reminded_at or row.opened_at)
        if now - last < after:
            continue
        unchanged = (
            (ManualTaskRecord.reminded_at == row.reminded_at)
            if row.reminded_at
            else ManualTaskRecord.reminded_at.does_not_exist()
        )
        reminded = [ManualTaskRecord.reminded_at.set(utc_stamp(now)), ManualTaskRecord.reminders.add(1)]
        if not update_if(row, reminded, unchanged):
            continue
        _email_owner(get_request(row.request_id), inventory.dataset(row.dataset), row, reminder=True)
        sent += 1
    return sent

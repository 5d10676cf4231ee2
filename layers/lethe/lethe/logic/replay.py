"""Replay after a restore: a table restored from a backup brings back what Lethe erased since. The
replay reads the restored table once (a parallel-free, consistent Scan, page by page) and, per item:

- its key is in the erasure ledger: the same action again. A delete or an isolation deletes the
  copy (an isolated item is in the vault already, or was purged from it: the vault is never read
  here); an anonymization masks it again, unless the copy no longer carries the subject it was
  erased for (already done);
- its subject was erased on request (and the key is not in the ledger: an item the backup has and
  the erasure never saw): the dataset's `on_erasure`;
- a legal hold covering the subject now turns either into an isolation, never a deletion;
- otherwise: the retention sweep's own decision as of now (delete, anonymize, isolate, or keep).

Every write is conditional on the item being as read, so a replay run again (or after a crash half
way) changes only what is left, and each ledger item is handled once. A table whose key is not the
dataset's is refused before anything is written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from lethe.data import audit, datasets, ledger, restores, sweeps
from lethe.data.expiry import ANONYMIZED_ATTRIBUTE, parse_instant
from lethe.data.models import ControlRecord
from lethe.domain import Model
from lethe.errors import (
    ReplayJobNotFound,
    ReplayTableMismatch,
    RestoredTableNotFound,
    UnknownDataset,
)
from lethe.inventory import Action, Dataset, get_inventory
from lethe.keys import KeyRing, key_ring
from lethe.logic import retention as sweep_logic
from lethe.logic.legal_holds import Hold, covering, list_holds
from lethe.settings import get_settings

JOB_PARTITION = "REPLAY"
PAGE = 500
TASK_KIND = "replay_task"


class ReplayCounts(Model):
    items_read: Annotated[int, Field(description="Items of the restored table read (each once)")] = 0
    matched_by_key: Annotated[int, Field(description="Items whose key is in the erasure ledger")] = 0
    matched_by_subject: Annotated[int, Field(description="Items of a subject erased on request")] = 0
    deleted: int = 0
    anonymized: int = 0
    isolated: int = 0
    already_done: Annotated[int, Field(description="Ledger matches found already erased again")] = 0
    conflicts: int = 0
    retention: Annotated[sweep_logic.Counts, Field(description="The retention sweep of the other items")] = Field(
        default_factory=sweep_logic.Counts
    )

    def add(self, other: ReplayCounts) -> None:
        for name in ReplayCounts.model_fields:
            if name == "retention":
                self.retention.add(other.retention)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))


class ReplayTask(Model):
    """One unit of a replay job on the ReplayQueue: where the Scan carries on."""

    kind: Literal["replay_task"] = "replay_task"
    job_id: str
    dataset: str
    table: str
    now: datetime
    start_key: dict[str, Any] | None = None
    wait_until_active: bool = False


class ReplayJob(Model):
    job_id: str
    dataset: str
    table: str
    status: Literal["queued", "running", "waiting_for_table", "done"]
    started_at: datetime
    finished_at: datetime | None = None
    counts: ReplayCounts = Field(default_factory=ReplayCounts)
    source: Annotated[str, Field(description="operator, or the CloudTrail event that started it")] = "operator"


# ---------------------------------------------------------------- checks


def _dataset(name: str) -> Dataset:
    inventory = get_inventory()
    if name not in inventory.datasets:
        raise UnknownDataset(f"the inventory has no dataset {name!r}")
    return inventory.dataset(name)


def restored_dataset(dataset_name: str, table: str) -> Dataset:
    """The dataset, pointed at the restored table, once the table is known to have the dataset's key.
    Raises UnknownDataset, RestoredTableNotFound or ReplayTableMismatch; nothing is written."""
    dataset = _dataset(dataset_name)
    expected = datasets.table_key(dataset)
    found = restores.key_schema(table)
    if found is None:
        raise RestoredTableNotFound(f"table {table} does not exist (or Lethe may not read it)")
    if found != (expected.hash, expected.range):
        raise ReplayTableMismatch(
            f"table {table} is keyed by {'/'.join(k for k in found if k)}, but dataset {dataset.name} by "
            f"{'/'.join(expected.attributes)}: it is not a copy of that dataset's table"
        )
    # A physical name, as it is: never mapped through the dataset table map.
    return dataset.model_copy(update={"table": table, "key": expected})


# ---------------------------------------------------------------- the pass


class _Replay:
    def __init__(self, dataset: Dataset, now: datetime, ring: KeyRing) -> None:
        self.dataset, self.now, self.ring = dataset, now, ring
        self.counts = ReplayCounts()
        rule = dataset.retention
        self.sweep = sweep_logic._Sweep(dataset, rule, now, apply=True, ring=ring) if rule is not None else None
        self._holds: list[Hold] | None = None

    def holds(self, subject: Any) -> list[Hold]:
        if self._holds is None:
            self._holds = list_holds(active_only=True)
        if not self._holds:
            return []
        refs = self.ring.subject_refs(subject) if isinstance(subject, str) and subject else [None]
        return covering(self._holds, refs, self.dataset.name)

    def page(self, items: list[dict[str, Any]]) -> None:
        attribute = self.dataset.subject.attribute
        key_refs = [ledger.key_ref(self.dataset.name, datasets.key_of(self.dataset, i), self.ring) for i in items]
        by_key = ledger.items_erased(self.dataset.name, key_refs)
        subject_refs: dict[int, list[str]] = {}
        for n, item in enumerate(items):
            value = item.get(attribute)
            if isinstance(value, str) and value:
                subject_refs[n] = self.ring.subject_refs(value)
        wanted = sorted({ref for refs in subject_refs.values() for ref in refs})
        erased_subjects = ledger.subjects_erased(wanted) if wanted else {}
        rest = []
        for n, item in enumerate(items):
            self.counts.items_read += 1
            entry = by_key.get(key_refs[n])
            refs = subject_refs.get(n, [])
            if entry is not None:
                self.counts.matched_by_key += 1
                self._again(item, Action(entry.action), entry.subject_ref, refs, by_key=True)
            elif matched := next((ref for ref in refs if ref in erased_subjects), None):
                self.counts.matched_by_subject += 1
                self._again(item, self.dataset.on_erasure, matched, refs, by_key=False)
            else:
                rest.append(item)
        if self.sweep is not None and rest:
            self.sweep.handle(rest)

    def _again(
        self, item: dict[str, Any], action: Action, erased_ref: str | None, refs: list[str], *, by_key: bool
    ) -> None:
        """The erasure the ledger recorded, applied to the restored copy (holds win)."""
        holds = self.holds(item.get(self.dataset.subject.attribute))
        if holds:
            self._isolate(item, reason="legal_hold", holds=[h.hold_id for h in holds], subject_ref=erased_ref)
        elif action is Action.anonymize:
            if item.get(ANONYMIZED_ATTRIBUTE) is not None or (erased_ref is not None and erased_ref not in refs):
                self.counts.already_done += 1  # the copy no longer carries what was erased
                return
            self._anonymize(item)
        elif action is Action.isolate and not by_key and self._isolate_due(item) is not None:
            # An item the erasure never saw, kept for its statutory retention: into the vault until then.
            self._isolate(item, reason="statutory_retention", holds=[], subject_ref=erased_ref)
        else:
            # Deleted, or isolated (the vault holds that item, or purged it): the copy goes.
            self._delete(item)

    def _isolate_due(self, item: dict[str, Any]) -> datetime | None:
        """The end of the item's retention, if it is still ahead (an isolation that was purged is past)."""
        rule = self.dataset.retention
        since = parse_instant(item.get(rule.since)) if rule is not None else None
        if rule is None or since is None:
            return None
        end = rule.after.after(since)
        return end if end > self.now else None

    def _delete(self, item: dict[str, Any]) -> None:
        if sweeps.delete_restored_copy(self.dataset, item):
            self.counts.deleted += 1
        else:
            self.counts.conflicts += 1

    def _anonymize(self, item: dict[str, Any]) -> None:
        # Random tokens, as the sweep writes: the masked values link to no one.
        attribute = self.dataset.subject.attribute
        if sweeps.anonymize_for_good(self.dataset, item, condition_attribute=attribute, now=self.now):
            self.counts.anonymized += 1
        else:
            self.counts.conflicts += 1

    def _isolate(self, item: dict[str, Any], *, reason: str, holds: list[str], subject_ref: str | None) -> None:
        isolated = sweeps.isolate(
            self.dataset,
            item,
            reason=reason,
            purge_at=self._isolate_due(item) or self.now,
            subject_ref=subject_ref,
            hold_ids=holds or None,
            now=self.now,
            erased=None,  # the ledger holds this item already
        )
        if isolated is None:
            self.counts.conflicts += 1
        elif isolated:
            self.counts.isolated += 1
        else:
            self._delete(item)  # the vault holds this very item already: only the copy is left


def run(
    dataset_name: str,
    table: str,
    *,
    now: datetime,
    start_key: dict[str, Any] | None = None,
    out_of_time: Callable[[], bool] = lambda: False,
    page_size: int = PAGE,
) -> tuple[ReplayCounts, dict[str, Any] | None]:
    """Replay the ledger onto a restored table, from `start_key`. Returns what it did and, if
    `out_of_time` turned true between pages, where to carry on."""
    dataset = restored_dataset(dataset_name, table)
    replay = _Replay(dataset, now.astimezone(UTC), key_ring())
    key = start_key
    while True:
        items, key = sweeps.restored_page(dataset, key, page_size)
        replay.page(items)
        if replay.sweep is not None:
            replay.sweep.flush()
        if key is None or out_of_time():
            break
    if replay.sweep is not None:
        replay.counts.retention = replay.sweep.counts
    return replay.counts, key


# ---------------------------------------------------------------- jobs


def _job_record(job: ReplayJob) -> ControlRecord:
    return ControlRecord(
        JOB_PARTITION, job.job_id, at=job.started_at.isoformat(), data=job.model_dump(mode="json", exclude={"job_id"})
    )


def get_job(job_id: str) -> ReplayJob:
    record = next(iter(ControlRecord.query(JOB_PARTITION, ControlRecord.sk == job_id, consistent_read=True)), None)
    if record is None:
        raise ReplayJobNotFound(f"no replay job {job_id}")
    return ReplayJob(job_id=job_id, **(record.data or {}))


def start_job(dataset_name: str, table: str, *, now: datetime, source: str = "operator") -> ReplayJob:
    """Check the table, record the job and queue its first task. Raises before writing anything if the
    table is not the dataset's shape. A table still being restored is waited for."""
    status = restores.table_status(table)
    if status is None:
        raise RestoredTableNotFound(f"table {table} does not exist (or Lethe may not read it)")
    if status == "ACTIVE":
        restored_dataset(dataset_name, table)
    else:
        _dataset(dataset_name)
    job = ReplayJob(
        job_id="rpl_" + uuid.uuid4().hex[:16],
        dataset=dataset_name,
        table=table,
        status="queued" if status == "ACTIVE" else "waiting_for_table",
        started_at=now,
        source=source,
    )
    _job_record(job).save()
    queue(ReplayTask(job_id=job.job_id, dataset=dataset_name, table=table, now=now, wait_until_active=True))
    audit.append(
        "backups.replay_started",
        actor=source,
        dataset=dataset_name,
        details={"job_id": job.job_id, "table": table},
        at=now,
    )
    return job


def queue(task: ReplayTask, *, delay_seconds: int = 0) -> None:
    restores.queue_replay_task(task.model_dump_json(), delay_seconds=delay_seconds)


def run_task(task: ReplayTask, *, out_of_time: Callable[[], bool] = lambda: False) -> ReplayJob:
    """One task of a job: wait for the table, replay what fits in the time left, queue the rest."""
    job = get_job(task.job_id)
    if job.status == "done":
        return job
    if task.wait_until_active and restores.table_status(task.table) != "ACTIVE":
        queue(task, delay_seconds=900)  # a restore takes minutes to hours; look again later
        return job
    started = time.monotonic()
    counts, next_key = run(task.dataset, task.table, now=task.now, start_key=task.start_key, out_of_time=out_of_time)
    job.counts.add(counts)
    job.status = "running" if next_key is not None else "done"
    if next_key is None:
        job.finished_at = datetime.now(UTC)
    # The job's counts and the continuation are saved before it is queued: a redelivery of this task
    # finds the items it handled gone and adds nothing for them.
    _job_record(job).save()
    if next_key is not None:
        queue(task.model_copy(update={"start_key": next_key, "wait_until_active": False}))
    audit.append(
        "backups.replay_task",
        dataset=task.dataset,
        details={
            "job_id": task.job_id,
            "table": task.table,
            "counts": counts.model_dump(),
            "continued": next_key is not None,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )
    return job


# ---------------------------------------------------------------- restores seen by CloudTrail

RESTORE_EVENTS = frozenset({"RestoreTableToPointInTime", "RestoreTableFromBackup"})


def restore_of(event: dict[str, Any]) -> tuple[str, str] | None:
    """(dataset, restored table) of a CloudTrail restore whose source is a dataset's table, else None."""
    detail = event.get("detail") or {}
    if detail.get("eventName") not in RESTORE_EVENTS or detail.get("errorCode"):
        return None
    params = detail.get("requestParameters") or {}
    target = params.get("targetTableName")
    source = params.get("sourceTableName")
    if not source and params.get("backupArn"):
        source = str(params["backupArn"]).split(":table/", 1)[-1].split("/backup/", 1)[0]
    if not target or not source:
        return None
    settings = get_settings()
    for dataset in get_inventory().datasets.values():
        if settings.table_name(dataset.table) == source:
            return dataset.name, str(target)
    return None

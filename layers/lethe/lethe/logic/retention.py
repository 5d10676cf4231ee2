"""The retention sweep: data with no business need left is deleted, anonymized, or isolated in
the vault until deletion is possible, as each dataset's `retention` rule says.

A run is planned by RetentionFunction and carried out by RetentionWorkerFunction, one SQS task each:
- index path: a dataset with `retention.index` (a sparse GSI on `expiry_bucket` = "<day>#<shard>")
  gets one task per shard and span of days. The worker Queries each day's bucket for the shard,
  so the cost follows the number of expired items, not the table size.
- scan path: a dataset without one gets one task per parallel Scan segment, with a filter on the
  `since` attribute; the report names it and suggests an index.

Which days an index sweep covers: from the dataset's sweep watermark (ControlTable pk "SWEEP",
sk <dataset>: the last day planned; read again, as its later items were not due yet), at least the last
`retention_overlap_days` days, so a task that failed recently is covered again by the next runs;
up to the run's own day. The first sweep of an index dataset (no watermark yet) is a backfill: a
parallel Scan, once, because items may have expired on any day before Lethe first looked; from
then on the index is enough. (Removing a dataset's watermark forces another backfill.)

Per item, once `since` + `after` has passed (checked on the item as read from the table; for a
delete whose index projects `since`, the subject and the restriction mark, on the index's copy, with
the delete conditional on all three being unchanged):
- restricted items (attribute `lethe_restricted`, GDPR Art. 18) are left alone;
- items under a legal hold are isolated in the vault, never deleted (purged once no hold covers
  them), and counted as skipped_under_hold;
- otherwise the action: delete, anonymize (the fields' strategies; the expiry attributes are
  removed so the item leaves the index, and `lethe_anonymized_at` marks it for the scan path), or
  isolate (kept in the vault for `retention_isolation_days` from the sweep, then purged).
Every write is conditional on the item being as it was read, so a changed item is never
overwritten; re-running a day finds nothing left to do.

The dry run (`report`) runs the very same selection with writes switched off.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from lethe.data import audit, faults, ledger, stores, sweeps
from lethe.data.datasets import RESTRICTED_ATTRIBUTE, key_of
from lethe.data.expiry import (
    ANONYMIZED_ATTRIBUTE,
    BUCKET_ATTRIBUTE,
    EXPIRES_ATTRIBUTE,
    expiry_attributes,
    parse_instant,
)
from lethe.data.masking import UNLINKABLE
from lethe.domain import Model
from lethe.errors import DatasetUnavailable, RetentionTaskFailed
from lethe.inventory import Action, Dataset, Retention, get_inventory
from lethe.keys import KeyRing, key_ring
from lethe.logic.legal_holds import Hold, covering, list_holds
from lethe.settings import get_settings

TASK_KIND = "retention_task"
DELETE_BATCH = 25
# The scan filter is loose by this much: calendar durations and time zones shift the exact cutoff.
_SCAN_SLACK = timedelta(days=3)

Path = Literal["index", "scan", "objects"]


class RetentionTask(Model):
    """One unit of work on the RetentionQueue."""

    kind: Literal["retention_task"] = "retention_task"
    run_id: str
    dataset: str
    now: datetime
    path: Path
    shard: Annotated[int | None, Field(ge=0)] = None
    first_day: date | None = None
    last_day: date | None = None
    segment: Annotated[int | None, Field(ge=0)] = None
    total_segments: Annotated[int | None, Field(ge=1)] = None
    backfill: Annotated[bool, Field(description="First sweep of an index dataset, by Scan")] = False
    start_key: dict[str, Any] | None = None


class Counts(Model):
    items_read: int = 0
    deleted: int = 0
    anonymized: int = 0
    isolated: int = 0
    skipped_under_hold: int = 0
    skipped_restricted: int = 0
    not_due: int = 0
    refiled: int = 0
    conflicts: int = 0

    def add(self, other: Counts) -> None:
        for name in Counts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class TaskOutcome(Model):
    task: RetentionTask
    counts: Counts
    duration_ms: int
    continuation: RetentionTask | None = None


class RunSummary(Model):
    run_id: str
    now: datetime
    tasks: int
    tasks_per_dataset: dict[str, int]
    paths: dict[str, Path]
    scan_datasets: list[str]
    duration_ms: int


class DatasetReport(Model):
    path: Path
    backfill: bool = False
    would_delete: int = 0
    would_anonymize: int = 0
    would_isolate: int = 0
    skipped_under_hold: int = 0
    skipped_restricted: int = 0
    items_read: int = 0
    suggestion: str | None = None
    error: str | None = None
    complete: Annotated[
        bool,
        Field(description="False when the report's time ran out here: the counts are what was read so far"),
    ] = True
    stream_wired: Annotated[
        bool | None,
        Field(description="Index datasets: whether the table's stream reaches RetentionIndexFunction"),
    ] = None


class RetentionReport(Model):
    at: datetime
    datasets: dict[str, DatasetReport]
    complete: Annotated[
        bool,
        Field(
            description=(
                "False when the report ran out of time before reading everything: incomplete datasets say so, "
                "and their counts are lower bounds"
            )
        ),
    ] = True


# ---------------------------------------------------------------- planning


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def sweep_window(dataset: Dataset, today: date, marks: Mapping[str, str]) -> tuple[date, date] | None:
    """The days of expiry buckets the sweep of `today` covers for an index dataset, from the sweeps'
    watermarks; None when the dataset was never swept (the first sweep is a backfill by Scan)."""
    last = marks.get(dataset.name)
    if last is None:
        return None
    overlap_start = today - timedelta(days=get_settings().retention_overlap_days)
    # The watermark day itself is read again: items in its buckets may expire after that run's moment.
    return min(date.fromisoformat(last), overlap_start), today


def path_of(dataset: Dataset) -> Path:
    if dataset.in_s3:
        return "objects"
    return "index" if dataset.retention is not None and dataset.retention.index else "scan"


def suggestion_for(dataset: Dataset) -> str | None:
    if path_of(dataset) != "scan":
        return None
    return (
        f"{dataset.name} is swept by a full parallel Scan, whose cost grows with the table. Add a sparse "
        f"GSI on {BUCKET_ATTRIBUTE} (hash) and {EXPIRES_ATTRIBUTE} (range), write both with each item "
        "(lethe.data.expiry.expiry_attributes) and name it as retention.index in the inventory."
    )


def plan_dataset(
    dataset: Dataset, now: datetime, run_id: str, marks: Mapping[str, str] | None = None
) -> list[RetentionTask]:
    """The tasks of one dataset; `marks` are the watermarks a run read for all (read here if not given)."""
    settings = get_settings()
    rule = dataset.retention
    if rule is None:
        return []
    if dataset.in_s3:
        # Rows inside objects: one task reads every object of the prefix and rewrites those with due rows.
        return [RetentionTask(run_id=run_id, dataset=dataset.name, now=now, path="objects")]
    window = None
    if path_of(dataset) == "index":
        window = sweep_window(dataset, now.astimezone(UTC).date(), sweeps.watermarks() if marks is None else marks)
    if window is None:
        total = settings.retention_scan_segments
        return [
            RetentionTask(
                run_id=run_id,
                dataset=dataset.name,
                now=now,
                path="scan",
                segment=s,
                total_segments=total,
                backfill=path_of(dataset) == "index",
            )
            for s in range(total)
        ]
    first, last = window
    span = settings.retention_days_per_task
    tasks = []
    for shard in range(rule.shards):
        start = first
        while start <= last:
            end = min(start + timedelta(days=span - 1), last)
            tasks.append(
                RetentionTask(
                    run_id=run_id,
                    dataset=dataset.name,
                    now=now,
                    path="index",
                    shard=shard,
                    first_day=start,
                    last_day=end,
                )
            )
            start = end + timedelta(days=1)
    return tasks


def plan(now: datetime, run_id: str) -> list[RetentionTask]:
    """Every task of a run at `now`. Reads the watermarks (one Query), writes nothing."""
    marks = sweeps.watermarks()
    tasks: list[RetentionTask] = []
    for dataset in get_inventory().datasets.values():
        tasks.extend(plan_dataset(dataset, now, run_id, marks))
    return tasks


def run_id_for(now: datetime) -> str:
    """Names the run by its moment, plus a random part: the same event may be run twice."""
    return "run_" + now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "_" + uuid.uuid4().hex[:6]


def start_run(now: datetime, send: Callable[[list[RetentionTask]], None]) -> RunSummary:
    """Plan a run, hand its tasks to `send` (the queue), then move each index dataset's watermark
    to the run's day, and audit what was planned."""
    started = time.monotonic()
    run_id = run_id_for(now)
    tasks = plan(now, run_id)
    send(tasks)
    today = now.astimezone(UTC).date().isoformat()
    per_dataset: dict[str, int] = defaultdict(int)
    paths: dict[str, Path] = {}
    for task in tasks:
        per_dataset[task.dataset] += 1
        paths[task.dataset] = task.path
    for name in paths:
        if path_of(get_inventory().dataset(name)) == "index":
            sweeps.advance_watermark(name, today, now=now)
    summary = RunSummary(
        run_id=run_id,
        now=now,
        tasks=len(tasks),
        tasks_per_dataset=dict(per_dataset),
        paths=paths,
        scan_datasets=sorted(n for n in paths if path_of(get_inventory().dataset(n)) == "scan"),
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    audit.append(
        "retention.run_planned",
        at=now,
        details={
            **summary.model_dump(mode="json", exclude={"now"}),
            "suggestions": {n: suggestion_for(get_inventory().dataset(n)) for n in summary.scan_datasets},
        },
    )
    return summary


# ---------------------------------------------------------------- execution


class _Sweep:
    """The per-item decisions of one task, with writes on or off."""

    def __init__(
        self, dataset: Dataset, rule: Retention, now: datetime, *, apply: bool, ring: KeyRing, refile: bool = False
    ) -> None:
        self.dataset, self.rule, self.now, self.apply, self.ring = dataset, rule, now, apply, ring
        self.refile = refile
        self.counts = Counts()
        self._holds: dict[str | None, list[str]] = {}
        self._active_holds: list[Hold] | None = None
        self._reads_items: bool | None = None
        self._pending_deletes: list[dict[str, Any]] = []

    def hold_ids(self, subject: Any) -> list[str]:
        """Active holds over this item's subject in this dataset (or over the dataset). The holds are
        read once per task (one Query), then matched in memory, once per subject."""
        if self._active_holds is None:
            self._active_holds = list_holds(active_only=True)
        if not self._active_holds:
            return []
        key = subject if isinstance(subject, str) and subject else None
        if key not in self._holds:
            refs = self.ring.subject_refs(key) if key else [None]
            self._holds[key] = sorted(h.hold_id for h in covering(self._active_holds, refs, self.dataset.name))
        return self._holds[key]

    def reads_items(self, index: str) -> bool:
        """Whether each index page's items must be read from the table before acting on them. A delete
        decides on `since`, the subject (for holds) and the restriction mark, and its condition
        re-checks all three; an index that projects them is enough. Anonymizing and isolating need the
        whole item. One DescribeTable per task."""
        if self._reads_items is None:
            if self.rule.action is not Action.delete:
                self._reads_items = True
            else:
                available = sweeps.index_attributes(self.dataset, index)
                needed = {self.rule.since, self.dataset.subject.attribute, RESTRICTED_ATTRIBUTE}
                self._reads_items = available is not None and not needed <= available
        return self._reads_items

    def subject_ref(self, item: dict[str, Any]) -> str | None:
        subject = item.get(self.dataset.subject.attribute)
        return self.ring.subject_ref(subject) if isinstance(subject, str) and subject else None

    def is_due(self, item: dict[str, Any]) -> bool:
        since = parse_instant(item.get(self.rule.since))
        return since is not None and self.rule.after.after(since) <= self.now

    def handle(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.counts.items_read += 1
            if not self.is_due(item) or item.get(ANONYMIZED_ATTRIBUTE) is not None:
                self.counts.not_due += 1
                if self.refile and item.get(ANONYMIZED_ATTRIBUTE) is None:
                    self._refile(item)
                continue
            if item.get(RESTRICTED_ATTRIBUTE):
                self.counts.skipped_restricted += 1
                continue
            holds = self.hold_ids(item.get(self.dataset.subject.attribute))
            if holds:
                self._isolate(item, reason="legal_hold", purge_at=self.now, holds=holds, counter="skipped_under_hold")
            elif self.rule.action is Action.delete:
                self._pending_deletes.append(item)
                if len(self._pending_deletes) >= DELETE_BATCH:
                    self.flush()
            elif self.rule.action is Action.anonymize:
                self._anonymize(item)
            else:
                purge_at = self.now + timedelta(days=get_settings().retention_isolation_days)
                self._isolate(item, reason="retention", purge_at=purge_at, holds=[], counter="isolated")

    def flush(self) -> None:
        """Delete the items collected so far (each conditionally)."""
        batch, self._pending_deletes = self._pending_deletes, []
        if not batch:
            return
        if not self.apply:
            self.counts.deleted += len(batch)
            return
        for item in batch:  # counted one by one, so a task that fails part-way reports what it did
            if sweeps.delete_unchanged(self.dataset, item, attribute=self.rule.since):
                self.counts.deleted += 1
            else:
                self.counts.conflicts += 1

    def _isolate(
        self, item: dict[str, Any], *, reason: str, purge_at: datetime, holds: list[str], counter: str
    ) -> None:
        if self.apply:
            isolated = sweeps.isolate(
                self.dataset,
                item,
                reason=reason,
                purge_at=purge_at,
                subject_ref=self.subject_ref(item),
                hold_ids=holds or None,
                now=self.now,
                erased=ledger.Erasure("retention", self.subject_ref(item)),
            )
            if isolated is None:
                self.counts.conflicts += 1
                return
            if not isolated:
                return
        setattr(self.counts, counter, getattr(self.counts, counter) + 1)

    def _refile(self, item: dict[str, Any]) -> None:
        """An item read from a bucket it no longer belongs to (its `since` moved later, and no stream
        re-filed it) moves to its true bucket, so it is read again on the day it falls due."""
        true = expiry_attributes(self.dataset, item)
        if not true or item.get(BUCKET_ATTRIBUTE) == true[BUCKET_ATTRIBUTE]:
            return
        if self.apply and not sweeps.refile(self.dataset, item, true, since_attribute=self.rule.since):
            self.counts.conflicts += 1
            return
        self.counts.refiled += 1

    def _anonymize(self, item: dict[str, Any]) -> None:
        # Random tokens, not a keyed HMAC: what retention calls anonymized nobody can re-link.
        if self.apply and not sweeps.anonymize_for_good(
            self.dataset, item, condition_attribute=self.rule.since, now=self.now, erased=ledger.Erasure("retention")
        ):
            self.counts.conflicts += 1
            return
        self.counts.anonymized += 1


def execute(
    task: RetentionTask,
    *,
    apply: bool = True,
    out_of_time: Callable[[], bool] = lambda: False,
    ring: KeyRing | None = None,
) -> TaskOutcome:
    """Carry out one task (or, with apply=False, count what it would do). If `out_of_time` turns
    true between pages, the rest is returned as a continuation task to queue. A task that fails part-way
    raises RetentionTaskFailed with the counts of what it did do, for the audit."""
    started = time.monotonic()
    dataset = get_inventory().dataset(task.dataset)
    rule = dataset.retention
    if rule is None:
        raise ValueError(f"dataset {task.dataset} has no retention rule")
    sweep = _Sweep(
        dataset, rule, task.now.astimezone(UTC), apply=apply, ring=ring or key_ring(), refile=task.path == "index"
    )
    try:
        if task.path == "objects":
            _execute_objects(dataset, rule, sweep)
            continuation = None
        elif task.path == "index":
            continuation = _execute_index(task, dataset, rule, sweep, out_of_time)
        else:
            continuation = _execute_scan(task, dataset, rule, sweep, out_of_time)
        sweep.flush()
    except Exception as exc:
        if not apply:
            raise
        raise RetentionTaskFailed(
            f"retention task on {task.dataset} failed part-way ({faults.code_of(exc)})",
            counts=sweep.counts.model_dump(),
        ) from exc
    return TaskOutcome(
        task=task,
        counts=sweep.counts,
        duration_ms=int((time.monotonic() - started) * 1000),
        continuation=continuation,
    )


def _execute_objects(dataset: Dataset, rule: Retention, sweep: _Sweep) -> None:
    """An S3 dataset (lethe.data.stores): the same per-row decision as for an item (due, not under a
    hold), carried out by rewriting each object that holds due rows, every other row left as it was."""
    counts = sweep.counts

    def due(row: dict[str, Any]) -> bool:
        counts.items_read += 1
        if not sweep.is_due(row):
            counts.not_due += 1
            return False
        if sweep.hold_ids(row.get(dataset.subject.attribute)):
            counts.skipped_under_hold += 1
            return False
        return True

    mask = stores.masked_row(dataset, UNLINKABLE, sweep.now) if rule.action is Action.anonymize else None
    store = stores.S3Store(sweep.ring)
    done = store.sweep_due(dataset, due, mask, apply=sweep.apply)
    counts.deleted += done.deleted
    counts.anonymized += done.anonymized


def _execute_index(
    task: RetentionTask, dataset: Dataset, rule: Retention, sweep: _Sweep, out_of_time: Callable[[], bool]
) -> RetentionTask | None:
    if rule.index is None or task.shard is None or task.first_day is None or task.last_day is None:
        raise ValueError("an index task needs the dataset's index, a shard and its days")
    until = task.now.astimezone(UTC).isoformat()
    start_key = task.start_key
    for day in _days(task.first_day, task.last_day):
        bucket = f"{day.isoformat()}#{task.shard}"
        while True:
            page = sweeps.index_page(dataset, rule.index, bucket, until, start_key, limit=sweeps.INDEX_PAGE)
            if page.items and sweep.reads_items(rule.index):
                keys = [key_of(dataset, item) for item in page.items]
                sweep.handle(sweeps.get_items(dataset, keys))
            elif page.items:
                sweep.handle(page.items)
            start_key = page.next_key
            more = start_key is not None or day < task.last_day
            if more and out_of_time():
                next_day = day if start_key is not None else day + timedelta(days=1)
                return task.model_copy(update={"first_day": next_day, "start_key": start_key})
            if start_key is None:
                break
    return None


def _execute_scan(
    task: RetentionTask, dataset: Dataset, rule: Retention, sweep: _Sweep, out_of_time: Callable[[], bool]
) -> RetentionTask | None:
    if task.segment is None or task.total_segments is None:
        raise ValueError("a scan task needs a segment and the number of segments")
    cutoff = rule.after.before(task.now.astimezone(UTC)) + _SCAN_SLACK
    start_key = task.start_key
    while True:
        page = sweeps.scan_page(
            dataset,
            segment=task.segment,
            total_segments=task.total_segments,
            since_attribute=rule.since,
            cutoff_iso=cutoff.isoformat(),
            cutoff_epoch=int(cutoff.timestamp()),
            skip_attribute=ANONYMIZED_ATTRIBUTE if rule.action is Action.anonymize else None,
            start_key=start_key,
        )
        sweep.handle(page.items)
        start_key = page.next_key
        if start_key is None:
            return None
        if out_of_time():
            return task.model_copy(update={"start_key": start_key})


def _task_details(task: RetentionTask) -> dict[str, Any]:
    return {
        "run_id": task.run_id,
        "now": task.now.isoformat(),
        "path": task.path,
        "action": _action(task.dataset),
        "shard": task.shard,
        "days": [str(task.first_day), str(task.last_day)] if task.path == "index" else None,
        "segment": task.segment,
        "total_segments": task.total_segments,
        "backfill": task.backfill,
    }


def record_task(outcome: TaskOutcome) -> None:
    """The task's summary in the audit: counts, path, span, duration. No personal data."""
    task = outcome.task
    details = {
        **_task_details(task),
        "continued": outcome.continuation is not None,
        "counts": outcome.counts.model_dump(),
        "duration_ms": outcome.duration_ms,
    }
    audit.append("retention.task", dataset=task.dataset, details=details)


def record_failed_task(task: RetentionTask, failure: RetentionTaskFailed) -> None:
    """What a task that failed part-way did change, so that the audit's counts add up to every item
    changed; the redelivered task records the rest."""
    details = {**_task_details(task), "error": failure.message, "counts": failure.counts}
    audit.append("retention.task_failed", dataset=task.dataset, details=details)


def _action(dataset: str) -> str:
    rule = get_inventory().dataset(dataset).retention
    return str(rule.action) if rule else "none"


def new_run_id() -> str:
    return f"dry_{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- dry run


def report(now: datetime, *, budget_seconds: float | None = None) -> RetentionReport:
    """What a run at `now` would do, per dataset, without writing anything: the same plan and the
    same per-item decisions as the real run, with every write switched off. With a budget (an API
    call has 29 s) each dataset gets an equal share of the time left, so one slow dataset does not
    starve the others; reading stops between pages once a share is spent, and the datasets not read
    to the end are marked incomplete, and the report with them."""
    now = now.astimezone(UTC)
    ring = key_ring()
    run_id = new_run_id()
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    swept = [d for d in get_inventory().datasets.values() if d.retention is not None]
    marks = sweeps.watermarks()
    datasets: dict[str, DatasetReport] = {}
    for position, dataset in enumerate(swept):
        share_ends = None
        if deadline is not None:
            started = time.monotonic()
            share_ends = started + max(deadline - started, 0.0) / (len(swept) - position)

        def out_of_time(until: float | None = share_ends) -> bool:
            return until is not None and time.monotonic() >= until

        counts = Counts()
        tasks = plan_dataset(dataset, now, run_id, marks)
        backfill = any(t.backfill for t in tasks)
        entry = DatasetReport(
            path="scan" if backfill else path_of(dataset), backfill=backfill, suggestion=suggestion_for(dataset)
        )
        try:
            for task in tasks:
                if out_of_time():
                    entry.complete = False
                    break
                outcome = execute(task, apply=False, out_of_time=out_of_time, ring=ring)
                counts.add(outcome.counts)
                if outcome.continuation is not None:
                    entry.complete = False
                    break
        except DatasetUnavailable as exc:
            entry.error = exc.message
        entry.would_delete = counts.deleted
        entry.would_anonymize = counts.anonymized
        entry.would_isolate = counts.isolated
        entry.skipped_under_hold = counts.skipped_under_hold
        entry.skipped_restricted = counts.skipped_restricted
        entry.items_read = counts.items_read
        if path_of(dataset) == "index" and entry.error is None:
            entry.stream_wired = sweeps.stream_state(dataset).wired
        datasets[dataset.name] = entry
    return RetentionReport(at=now, datasets=datasets, complete=all(e.complete for e in datasets.values()))


def queue_tasks(tasks: list[RetentionTask]) -> None:
    """Hand tasks to the RetentionQueue."""
    bodies = [t.model_dump_json() for t in tasks]
    # A retry may send a batch that did go again: a task is idempotent, so a duplicate only costs reads.
    sweeps.send_messages(get_settings().retention_queue_url, bodies)

"""The daily vault purge: isolated items are deleted once their purge date has passed and no
legal hold covers them.

Records are found by Query on the vault's by_purge_day index, day by day, never by Scan: from the
purge watermark's day (ControlTable pk "SWEEP", sk "#vault"), at least the last
`retention_overlap_days` days, up to the run's day. A record a hold still covers is re-filed under
a later day (`vault_hold_recheck_days` ahead), so it is looked at again without a Scan and is
purged soon after the hold is lifted. Each batch of records leaves one audit record.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from pydantic import Field

from lethe.data import audit, sweeps, vault
from lethe.domain import Model
from lethe.logic.legal_holds import holds_for
from lethe.settings import get_settings

WATERMARK = "#vault"
BATCH = 100


class PurgeSummary(Model):
    now: datetime
    days: list[str]
    purged: int = 0
    kept_under_hold: int = 0
    changed: int = 0
    batches: int = 0
    purged_per_dataset: dict[str, int] = Field(default_factory=dict)
    duration_ms: int = 0


def purge_window(today: date) -> tuple[date, date]:
    settings = get_settings()
    last = sweeps.watermark(WATERMARK)
    overlap_start = today - timedelta(days=settings.retention_overlap_days)
    if last is None:
        return today - timedelta(days=settings.retention_first_run_lookback_days), today
    # The watermark day itself is read again: its later records were not due at that run's moment.
    return min(date.fromisoformat(last), overlap_start), today


class _Batch:
    def __init__(self, summary: PurgeSummary, now: datetime) -> None:
        self.summary, self.now = summary, now
        self.purged: Counter[str] = Counter()
        self.kept = self.changed = 0

    def size(self) -> int:
        return sum(self.purged.values()) + self.kept + self.changed

    def flush(self, day: str) -> None:
        if not self.size():
            return
        audit.append(
            "vault.purge_batch",
            at=self.now,
            details={
                "purge_day": day,
                "purged": sum(self.purged.values()),
                "purged_per_dataset": dict(self.purged),
                "kept_under_hold": self.kept,
                "changed": self.changed,
            },
        )
        self.summary.batches += 1
        self.purged, self.kept, self.changed = Counter(), 0, 0


def purge_due(now: datetime) -> PurgeSummary:
    """Purge every vault record due by `now` that no active hold covers."""
    started = time.monotonic()
    now = now.astimezone(UTC)
    first, last = purge_window(now.date())
    recheck = now + timedelta(days=get_settings().vault_hold_recheck_days)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    summary = PurgeSummary(now=now, days=[days[0], days[-1]])
    per_dataset: Counter[str] = Counter()
    for day in days:
        batch = _Batch(summary, now)
        for due in vault.due_on(day, now):
            entry = vault.get_entry(due.vault_id)
            if entry is None:
                continue
            holds = sorted(h.hold_id for h in holds_for(entry.subject_ref, entry.dataset))
            if holds:
                if vault.defer(entry, until=recheck, hold_ids=holds):
                    batch.kept += 1
                    summary.kept_under_hold += 1
                else:
                    batch.changed += 1
                    summary.changed += 1
            elif vault.purge(entry):
                batch.purged[entry.dataset] += 1
                per_dataset[entry.dataset] += 1
                summary.purged += 1
            else:
                batch.changed += 1
                summary.changed += 1
            if batch.size() >= BATCH:
                batch.flush(day)
        batch.flush(day)
    sweeps.advance_watermark(WATERMARK, last.isoformat(), now=now)
    summary.purged_per_dataset = dict(per_dataset)
    summary.duration_ms = int((time.monotonic() - started) * 1000)
    return summary

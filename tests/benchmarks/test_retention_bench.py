"""Retention index path: DynamoDB calls and items read by one day's sweep of a dataset at table
size N and 10N, with the same number of expired items. A sparse, sharded expiry index makes the
cost follow the expired items, not the table: the ratio must be 1.0.

Items read counts every item or key DynamoDB returned (Query, Scan, GetItem, BatchGetItem)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.integration.test_retention import FIXTURE, TABLES, create_table, use_inventory

N = 2_000
EXPIRED = 200
NOW = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)


class CallCounter:
    """Counts DynamoDB calls and the items they return, through botocore's event hooks, on every
    client the sweep uses (lethe.aws for the dataset and vault, pynamodb's for holds and watermarks)."""

    def __init__(self, clients: list[Any]) -> None:
        self.calls: Counter[str] = Counter()
        self.items = 0
        self.active = False
        for client in clients:
            client.meta.events.register("after-call.dynamodb", self._after)

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.active:
            return
        self.calls[model.name] += 1
        if "Items" in parsed:
            self.items += len(parsed["Items"])
        if "Item" in parsed:
            self.items += 1
        for items in parsed.get("Responses", {}).values():
            self.items += len(items)

    def measure(self) -> tuple[int, int, dict[str, int]]:
        return sum(self.calls.values()), self.items, dict(self.calls)

    def reset(self) -> None:
        self.calls.clear()
        self.items = 0


def _write(dataset: str, count: int, *, started_at: datetime, ids: list[str] | None = None) -> None:
    from lethe.inventory import get_inventory
    from lethe.logic.expiry import expiry_attributes

    spec = get_inventory().dataset(dataset)
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(spec.table)
    with table.batch_writer() as batch:
        for n in range(count):
            sid = ids[n] if ids else f"b-{uuid.uuid4().hex}"
            item = {"session_id": sid, "user_email": f"{sid}@example.net", "started_at": started_at.isoformat()}
            batch.put_item(Item={**item, **expiry_attributes(spec, item)})


def _live_items() -> int:
    paginator = boto3.client("dynamodb", region_name="us-east-1").get_paginator("scan")
    return sum(page["Count"] for page in paginator.paginate(TableName="RetSessions", Select="COUNT"))


def _sweep_day(now: datetime, counter: CallCounter) -> tuple[int, int, dict[str, int], int]:
    """Plan and carry out the sessions dataset's tasks of one day's run, counting what they cost."""
    from lethe.data import sweeps
    from lethe.inventory import get_inventory
    from lethe.logic import retention

    dataset = get_inventory().dataset("sessions")
    tasks = retention.plan_dataset(dataset, now, retention.run_id_for(now))
    assert tasks and all(t.path == "index" for t in tasks)
    counter.reset()
    counter.active = True
    deleted = sum(retention.execute(task).counts.deleted for task in tasks)
    counter.active = False
    sweeps.advance_watermark("sessions", now.date().isoformat(), now=now)  # as the planner does after a run
    calls, items, per_op = counter.measure()
    return calls, items, per_op, deleted


def test_retention_index_path(aws: Any, monkeypatch: pytest.MonkeyPatch, bench_report: Any) -> None:
    from lethe.aws import client
    from lethe.data import sweeps
    from lethe.data.models import ControlRecord, bind_models
    from lethe.settings import get_settings

    # A steady daily sweep: only the new day's buckets (the overlap window multiplies the queries by
    # the same constant at N and at 10N; leaving it out keeps moto's index queries few).
    monkeypatch.setenv("LETHE_RETENTION_OVERLAP_DAYS", "0")
    use_inventory(monkeypatch, FIXTURE)
    bind_models(get_settings())
    hash_key, subject, expiry = TABLES["RetSessions"]
    create_table("RetSessions", hash_key, subject, expiry)
    # The dataset has been swept daily: today's run covers the overlap window of the index only.
    sweeps.advance_watermark("sessions", (NOW - timedelta(days=1)).date().isoformat(), now=NOW)
    counter = CallCounter([client("dynamodb"), ControlRecord._get_connection().connection.client])

    # Size N: N fresh sessions and EXPIRED sessions that expired yesterday
    _write("sessions", N, started_at=NOW)
    # The expired sessions reuse the same keys each day (the first day's are gone by the second), so
    # they fall into the same shards and the deletes into the same number of transactions.
    expired_ids = [f"exp-{n:05d}" for n in range(EXPIRED)]
    _write("sessions", EXPIRED, started_at=NOW - timedelta(days=31), ids=expired_ids)
    t = time.monotonic()
    small = _sweep_day(NOW, counter)
    print(f"sweep at N: {time.monotonic() - t:.1f}s")

    # Size 10N: the table grows tenfold with fresh sessions; the same number expire by the next day
    tomorrow = NOW + timedelta(days=1)
    t = time.monotonic()
    _write("sessions", 9 * N, started_at=tomorrow)
    print(f"write 9N: {time.monotonic() - t:.1f}s")
    _write("sessions", EXPIRED, started_at=tomorrow - timedelta(days=31), ids=expired_ids)
    t = time.monotonic()
    large = _sweep_day(tomorrow, counter)
    print(f"sweep at 10N: {time.monotonic() - t:.1f}s")

    assert small[3] == large[3] == EXPIRED
    assert _live_items() == 10 * N

    calls_ratio = bench_report.row(
        "dynamodb_calls",
        large[0],
        small[0],
        target="1.0",
        unit="calls",
        n=N,
        ten_n=10 * N,
        per_op_n=small[2],
        per_op_10n=large[2],
    )
    items_ratio = bench_report.row("items_read", large[1], small[1], target="1.0", unit="items", n=N, ten_n=10 * N)
    bench_report.row("items_deleted", large[3], small[3], target="1.0", unit="items")
    print(f"\ntable size N={N} -> 10N={10 * N}, expired items {EXPIRED} each day")
    print(f"calls per operation at N:   {small[2]}")
    print(f"calls per operation at 10N: {large[2]}")
    assert calls_ratio == 1.0
    assert items_ratio == 1.0

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
from tests.support.aws_calls import counting_calls

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
    from lethe.data.expiry import expiry_attributes
    from lethe.inventory import get_inventory

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


THROUGHPUT_EXPIRED = 2_000
THROUGHPUT_FRESH = 500


def _timed(function: Any, name: str, spent: Counter[str]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started

    return timed


def _raw_delete_loop(items: list[dict[str, Any]]) -> int:
    """The baseline: a bare boto3 client making the sweep's writes, the same conditional DeleteItem per
    item (unchanged since and subject, not restricted)."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    deleted = 0
    for item in items:
        ddb.delete_item(
            TableName="RetSessions",
            Key={"session_id": {"S": item["session_id"]}},
            ConditionExpression="#s = :s AND attribute_not_exists(#r) AND #p = :p",
            ExpressionAttributeNames={"#s": "started_at", "#r": "lethe_restricted", "#p": "user_email"},
            ExpressionAttributeValues={":s": {"S": item["started_at"]}, ":p": {"S": item["user_email"]}},
        )
        deleted += 1
    return deleted


# The sessions index as the demo tables declare it (projecting what a delete decides on), and keys only.
PROJECTIONS = {"projected": ["started_at", "user_email", "lethe_restricted"], "keys_only": None}


@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_retention_throughput(
    aws: Any, invoke: Any, monkeypatch: pytest.MonkeyPatch, bench_report: Any, projection: str
) -> None:
    """Items/s of the real RetentionWorkerFunction (index Query, then with a keys-only index a
    BatchGetItem, then a conditional DeleteItem per item) against a raw boto3 loop making the same
    conditional DeleteItem calls, both on moto in process. The raw loop is given the items."""
    from lethe.data import sweeps
    from lethe.data.models import bind_models
    from lethe.inventory import get_inventory
    from lethe.logic import retention
    from lethe.settings import get_settings
    from lethe_local.events import sqs_event

    monkeypatch.setenv("LETHE_RETENTION_OVERLAP_DAYS", "0")
    use_inventory(monkeypatch, FIXTURE)
    bind_models(get_settings())
    hash_key, subject, expiry = TABLES["RetSessions"]
    create_table("RetSessions", hash_key, subject, expiry, expiry_projects=PROJECTIONS[projection])
    sweeps.advance_watermark("sessions", (NOW - timedelta(days=1)).date().isoformat(), now=NOW)
    expired_at = NOW - timedelta(days=31)
    expired_ids = [f"exp-{n:05d}" for n in range(THROUGHPUT_EXPIRED)]

    # Given fresh sessions and THROUGHPUT_EXPIRED sessions that expired yesterday
    _write("sessions", THROUGHPUT_FRESH, started_at=NOW)
    _write("sessions", THROUGHPUT_EXPIRED, started_at=expired_at, ids=expired_ids)
    tasks = retention.plan_dataset(get_inventory().dataset("sessions"), NOW, retention.run_id_for(NOW))
    assert tasks and all(t.path == "index" for t in tasks)
    messages = [
        {"MessageId": f"m-{n}", "ReceiptHandle": f"r-{n}", "Body": task.model_dump_json()}
        for n, task in enumerate(tasks)
    ]
    event = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:RetentionQueue")
    # Where the worker's time goes: its index reads, its item reads and its deletes
    spent: Counter[str] = Counter()
    for name in ("index_page", "get_items", "delete_unchanged"):
        monkeypatch.setattr(sweeps, name, _timed(getattr(sweeps, name), name, spent))
    # When the worker sweeps them (one batch of the day's shard tasks)
    with counting_calls() as worker_calls:
        started = time.perf_counter()
        result = invoke("RetentionWorkerFunction", event)
        worker_seconds = time.perf_counter() - started
    # Then exactly the expired sessions are gone
    assert result.get("batchItemFailures", []) == []
    assert _live_items() == THROUGHPUT_FRESH
    assert (spent["get_items"] == 0) == (projection == "projected")

    # When the same expired sessions are written again and a raw loop deletes them
    _write("sessions", THROUGHPUT_EXPIRED, started_at=expired_at, ids=expired_ids)
    raw_items = [
        {"session_id": sid, "started_at": expired_at.isoformat(), "user_email": f"{sid}@example.net"}
        for sid in expired_ids
    ]
    with counting_calls() as raw_calls:
        started = time.perf_counter()
        raw_deleted = _raw_delete_loop(raw_items)
        raw_seconds = time.perf_counter() - started
    # Then they are gone as well
    assert raw_deleted == THROUGHPUT_EXPIRED
    assert _live_items() == THROUGHPUT_FRESH

    worker_rate = THROUGHPUT_EXPIRED / worker_seconds
    raw_rate = THROUGHPUT_EXPIRED / raw_seconds
    bench_report.row(
        f"sweep items/s, worker vs raw DeleteItem loop ({projection} index)",
        worker_rate,
        raw_rate,
        target=">= 0.8" if projection == "projected" else "(reads each item first)",
        unit="items/s (machine-dependent)",
        items=THROUGHPUT_EXPIRED,
        worker_seconds=round(worker_seconds, 3),
        raw_seconds=round(raw_seconds, 3),
    )
    bench_report.row(
        f"sweep delete phase items/s vs raw loop ({projection} index)",
        THROUGHPUT_EXPIRED / spent["delete_unchanged"],
        raw_rate,
        target="~1.0",
        unit="items/s (machine-dependent)",
    )
    # On DynamoDB each request costs about the same round trip whatever it returns, so requests per
    # item swept bound the throughput there; moto instead spends per item a Query returns.
    dataset_calls = sum(n for op, n in worker_calls.calls.items() if op.startswith("dynamodb."))
    raw_dataset_calls = raw_calls.service("dynamodb")
    bench_report.row(
        f"sweep DynamoDB requests: raw loop's vs worker's ({projection} index)",
        raw_dataset_calls,
        dataset_calls,
        target=">= 0.8",
        unit="requests",
        worker_calls=dict(worker_calls.calls),
    )
    print(
        f"\nworker ({projection} index) {worker_seconds:.2f}s for {THROUGHPUT_EXPIRED} items: index queries "
        f"{spent['index_page']:.2f}s, item reads {spent['get_items']:.2f}s, conditional deletes "
        f"{spent['delete_unchanged']:.2f}s; raw delete loop {raw_seconds:.2f}s"
    )

"""The retention index kept by Lethe, and replay after a restore, counted in DynamoDB calls:

- stream maintenance: writes (UpdateItem) to the dataset table per 1,000 stream records, when no
  record changed `since` (baseline 0) and when every one did (baseline 1,000);
- replay: items read from the restored table against its size (read once: ratio 1.0), and writes
  against the items the ledger matches (ratio 1.0).

The baselines are counted independently of the code measured: the records written, the items put."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.support.aws_calls import counting_calls

RECORDS = 1_000
NOW = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)


def _table() -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1").Table("GuestSessionsTable")


def _drain(invoke: Callable[..., Any], tmp_path: Path) -> None:
    from lethe_local.streams import StreamPoller

    poller = StreamPoller(
        boto3.client("dynamodb", region_name="us-east-1"),
        boto3.client("dynamodbstreams", region_name="us-east-1", config=Config(account_id_endpoint_mode="disabled")),
        lambda: ["GuestSessionsTable"],
        "RetentionIndexFunction",
        invoke,
        parked=tmp_path,
    )
    poller.refresh()
    while poller.poll_once():
        pass


def test_stream_writes_per_thousand_records(
    aws: Any, invoke: Callable[..., Any], tmp_path: Path, bench_report: Any
) -> None:
    from lethe.data.expiry import expiry_attributes
    from lethe.inventory import get_inventory

    dataset = get_inventory().dataset("guest_sessions")
    ids = [f"gs-bench-{n:05d}" for n in range(RECORDS)]
    with _table().batch_writer() as batch:
        for session_id in ids:
            item = {"session_id": session_id, "guest_email": "g@example.org", "started_at": NOW.isoformat()}
            batch.put_item(Item={**item, **expiry_attributes(dataset, item)})
    _drain(invoke, tmp_path)

    def writes_after(expression: str, value: str) -> int:
        for session_id in ids:
            _table().update_item(
                Key={"session_id": session_id},
                UpdateExpression=expression,
                ExpressionAttributeValues={":v": value},
            )
        with counting_calls() as counter:
            _drain(invoke, tmp_path)
        return counter.calls["dynamodb.UpdateItem"]

    unchanged = writes_after("SET display_name = :v", "Guest")
    moved = writes_after("SET started_at = :v", (NOW + timedelta(days=3)).isoformat())

    bench_report.row("writes, no since changed", unchanged, 0, target="0", unit="UpdateItem", records=RECORDS)
    bench_report.row("writes, every since changed", moved, RECORDS, target="1.0", unit="UpdateItem", records=RECORDS)
    assert unchanged == 0
    assert moved == RECORDS


def test_replay_reads_the_restored_table_once(aws: Any, bench_report: Any) -> None:
    from lethe.data import ledger
    from lethe.logic import replay

    # Given a restored copy of 2,000 sessions, 100 of which the ledger says were erased
    size, erased = 2_000, 100
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="GuestSessionsBench",
        KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("GuestSessionsBench")
    ids = [f"gs-{uuid.uuid4().hex[:12]}" for _ in range(size)]
    with table.batch_writer() as batch:
        for session_id in ids:
            batch.put_item(
                Item={"session_id": session_id, "guest_email": "g@example.org", "started_at": NOW.isoformat()}
            )
    ledger.record_items(
        "guest_sessions",
        [{"session_id": s} for s in ids[:erased]],
        action="delete",
        erasure=ledger.Erasure("erasure", "k1:bench"),
    )

    # When it is replayed
    with counting_calls() as counter:
        counts, _ = replay.run("guest_sessions", "GuestSessionsBench", now=NOW)

    scanned = counts.items_read
    writes = counter.calls["dynamodb.DeleteItem"] + counter.calls["dynamodb.UpdateItem"]
    bench_report.row("restored items read", scanned, size, target="1.0", unit="items")
    bench_report.row("writes", writes, erased, target="1.0", unit="DeleteItem+UpdateItem")
    assert scanned == size and counts.deleted == erased
    assert writes == erased

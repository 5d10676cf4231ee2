"""The retention index kept true by Lethe: RetentionIndexFunction on the demo tables' streams, fed by
the local stack's stream event source mapping (lethe_local.streams) against moto's DynamoDB Streams,
and the sweep's own re-filing where no stream runs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.integration.test_retention import event_at, sweep, task_counts

NOW = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)
DEMO_TABLES = ["AccountsTable", "GuestSessionsTable", "FeedbackTable", "InvoicesTable", "DiagnosticsTable"]


def _streams() -> Any:
    return boto3.client("dynamodbstreams", region_name="us-east-1", config=Config(account_id_endpoint_mode="disabled"))


def _table(name: str) -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(name)


@pytest.fixture
def drain_streams(invoke: Callable[..., Any], tmp_path: Path) -> Callable[[], int]:
    """Read every demo table's stream to its end through RetentionIndexFunction, as Lambda would;
    returns how many batches were delivered."""
    from lethe_local.streams import StreamPoller

    poller = StreamPoller(
        boto3.client("dynamodb", region_name="us-east-1"),
        _streams(),
        lambda: DEMO_TABLES,
        "RetentionIndexFunction",
        invoke,
        parked=tmp_path,
    )

    def drain() -> int:
        poller.refresh()
        batches = 0
        while poller.poll_once():
            batches += 1
        return batches

    return drain


def _stream_records(table: str) -> list[dict[str, Any]]:
    """Every record on the table's stream so far."""
    arn = boto3.client("dynamodb", region_name="us-east-1").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in _streams().describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = _streams().get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = _streams().get_records(ShardIterator=iterator)
            if not page["Records"]:
                break
            records.extend(page["Records"])
            iterator = page["NextShardIterator"]
    return records


def _session(started: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "session_id": f"gs-{uuid.uuid4().hex[:10]}",
        "guest_email": f"guest-{uuid.uuid4().hex[:8]}@example.org",
        "customer_id": "acme-corp",
        "started_at": started.isoformat(),
        **extra,
    }


def _account(last_active: datetime) -> dict[str, Any]:
    from lethe.data.expiry import expiry_attributes
    from lethe.inventory import get_inventory

    item = {
        "account_id": f"acct-{uuid.uuid4().hex[:10]}",
        "email": f"user-{uuid.uuid4().hex[:8]}@example.org",
        "name": "Pat Example",
        "last_active_at": last_active.isoformat(),
    }
    return {**item, **expiry_attributes(get_inventory().dataset("accounts"), item)}


def _exists(table: str, key: dict[str, str]) -> bool:
    return "Item" in _table(table).get_item(Key=key, ConsistentRead=True)


def test_an_item_written_without_expiry_attributes_past_retention_is_swept_by_the_next_run(
    aws: Any, invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]], drain_streams: Any
) -> None:
    # Given the guest sessions were swept once (so later sweeps go by the index, from the watermark)
    sweep(invoke, aws, event_at(sample_event, NOW))
    # And a service writes a session 60 days old (retention 30 days) without expiry attributes
    item = _session(NOW - timedelta(days=60))
    _table("GuestSessionsTable").put_item(Item=item)

    # When its stream record reaches RetentionIndexFunction
    drain_streams()

    # Then it is filed under the day the next sweep reads, with its true expiry
    stored = _table("GuestSessionsTable").get_item(Key={"session_id": item["session_id"]})["Item"]
    assert stored["expires_on"] == (NOW - timedelta(days=30)).isoformat()
    assert stored["expiry_bucket"].startswith(NOW.date().isoformat() + "#")
    # And the next run deletes it
    summary = sweep(invoke, aws, event_at(sample_event, NOW + timedelta(days=1)))
    assert not _exists("GuestSessionsTable", {"session_id": item["session_id"]})
    assert task_counts(summary["run_id"])["guest_sessions"]["deleted"] == 1


def test_without_the_stream_such_an_item_is_never_read_by_the_index(
    aws: Any, invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given the same item, but no stream delivered
    sweep(invoke, aws, event_at(sample_event, NOW))
    item = _session(NOW - timedelta(days=60))
    _table("GuestSessionsTable").put_item(Item=item)

    # When the next run sweeps, Then the index does not find it (what the stream is for)
    sweep(invoke, aws, event_at(sample_event, NOW + timedelta(days=1)))
    assert _exists("GuestSessionsTable", {"session_id": item["session_id"]})


@pytest.mark.parametrize("stream", [True, False], ids=["refiled-by-stream", "refiled-by-sweep"])
def test_an_item_whose_since_moved_later_is_swept_on_its_new_day_not_before(
    aws: Any,
    invoke: Callable[..., Any],
    sample_event: Callable[[str], dict[str, Any]],
    drain_streams: Any,
    stream: bool,
) -> None:
    # Given an account due in 3 days, filed correctly, and the accounts swept once
    sweep(invoke, aws, event_at(sample_event, NOW))
    account = _account(NOW - timedelta(days=730) + timedelta(days=3))
    _table("AccountsTable").put_item(Item=account)
    # When the service moves last_active_at 10 days later, without touching the expiry attributes
    moved = NOW - timedelta(days=730) + timedelta(days=10)
    _table("AccountsTable").update_item(
        Key={"account_id": account["account_id"]},
        UpdateExpression="SET last_active_at = :t",
        ExpressionAttributeValues={":t": moved.isoformat()},
    )
    if stream:
        drain_streams()
    key = {"account_id": account["account_id"]}

    # Then on its old due day and the day before its new one it is left alone
    first = sweep(invoke, aws, event_at(sample_event, NOW + timedelta(days=4)))
    sweep(invoke, aws, event_at(sample_event, NOW + timedelta(days=9)))
    assert _table("AccountsTable").get_item(Key=key)["Item"]["name"] == "Pat Example"
    # And without a stream, the sweep that read it in its old bucket moved it to its true one
    refiled = task_counts(first["run_id"]).get("accounts", {}).get("refiled", 0)
    assert refiled == (0 if stream else 1)
    # And on its new due day it is anonymized
    sweep(invoke, aws, event_at(sample_event, NOW + timedelta(days=11)))
    assert _table("AccountsTable").get_item(Key=key)["Item"]["name"] == "[redacted]"


def test_writes_follow_the_items_that_need_one_and_never_loop(aws: Any, drain_streams: Any) -> None:
    from lethe.data.expiry import expiry_attributes
    from lethe.inventory import get_inventory

    dataset = get_inventory().dataset("guest_sessions")
    sessions = [_session(NOW - timedelta(days=5)) for _ in range(20)]
    for item in sessions:
        _table("GuestSessionsTable").put_item(Item={**item, **expiry_attributes(dataset, item)})
    drain_streams()
    assert len(_stream_records("GuestSessionsTable")) == 20  # filed right by the service: no write

    # When another attribute changes on every item, Then no write follows
    for item in sessions:
        _table("GuestSessionsTable").update_item(
            Key={"session_id": item["session_id"]},
            UpdateExpression="SET display_name = :n",
            ExpressionAttributeValues={":n": "Guest"},
        )
    drain_streams()
    assert len(_stream_records("GuestSessionsTable")) == 40

    # When every item's since changes, Then exactly one write each, and none for those writes' records
    for item in sessions:
        _table("GuestSessionsTable").update_item(
            Key={"session_id": item["session_id"]},
            UpdateExpression="SET started_at = :t",
            ExpressionAttributeValues={":t": (NOW - timedelta(days=2)).isoformat()},
        )
    drain_streams()
    drain_streams()
    records = _stream_records("GuestSessionsTable")
    assert len(records) == 80
    stored = _table("GuestSessionsTable").get_item(Key={"session_id": sessions[0]["session_id"]})["Item"]
    assert stored["expires_on"] == (NOW - timedelta(days=2) + timedelta(days=30)).isoformat()


def test_a_record_that_cannot_be_processed_is_reported_and_the_rest_applied(
    aws: Any, invoke: Callable[..., Any]
) -> None:
    from lethe_local.streams import lambda_record

    # Given two sessions written without expiry attributes, and their stream records
    items = [_session(NOW - timedelta(days=1)) for _ in range(2)]
    for item in items:
        _table("GuestSessionsTable").put_item(Item=item)
    arn = boto3.client("dynamodb", region_name="us-east-1").describe_table(TableName="GuestSessionsTable")["Table"][
        "LatestStreamArn"
    ]
    good = [lambda_record(r, arn) for r in _stream_records("GuestSessionsTable")]
    # And between them a record from a source that is no stream
    bad = {**good[0], "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:not-a-stream"}
    bad["dynamodb"] = {**good[0]["dynamodb"], "SequenceNumber": "1"}

    # When the batch is delivered
    result = invoke("RetentionIndexFunction", {"Records": [good[0], bad, good[1]]})

    # Then exactly the bad record is reported, and both sessions were filed
    assert result == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    for item in items:
        stored = _table("GuestSessionsTable").get_item(Key={"session_id": item["session_id"]})["Item"]
        assert stored["expires_on"] == (NOW - timedelta(days=1) + timedelta(days=30)).isoformat()


def test_the_report_says_which_indexed_datasets_have_their_stream_wired(aws: Any, drain_streams: Any) -> None:
    from lethe.logic import retention

    # Given records of the guest sessions' stream have reached RetentionIndexFunction, and none of the feedback's
    _table("GuestSessionsTable").put_item(Item=_session(NOW - timedelta(days=1)))
    drain_streams()

    # When the report runs
    report = retention.report(NOW).datasets

    # Then it says so per indexed dataset, and nothing for datasets swept by Scan
    assert report["guest_sessions"].stream_wired is True
    assert report["feedback"].stream_wired is False
    assert report["diagnostics"].stream_wired is None


def test_data_written_again_for_an_erased_subject_is_flagged_in_audit_and_digest_not_erased(
    aws: Any, invoke: Callable[..., Any], drain_streams: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.data import ledger
    from lethe.keys import key_ring
    from lethe.logic import deadline_watch
    from tests.support.fulfilment import audit_dump, sent_mail

    # Given a subject erased on request, and a bystander never erased
    email, other = f"back-{uuid.uuid4().hex[:8]}@example.org", f"new-{uuid.uuid4().hex[:8]}@example.org"
    ref = key_ring().subject_ref(email)
    ledger.record_subject(ref, reference="req_0123456789abcdef", now=datetime.now(UTC) - timedelta(days=1))

    # When a service writes a session for each, and the streams are read (twice: a redelivery)
    again = _session(datetime.now(UTC), guest_email=email)
    _table("GuestSessionsTable").put_item(Item=again)
    _table("GuestSessionsTable").put_item(Item=_session(datetime.now(UTC), guest_email=other))
    drain_streams()
    from lethe_local.streams import lambda_record

    arn = boto3.client("dynamodb", region_name="us-east-1").describe_table(TableName="GuestSessionsTable")["Table"][
        "LatestStreamArn"
    ]
    redelivered = {"Records": [lambda_record(r, arn) for r in _stream_records("GuestSessionsTable")]}
    assert invoke("RetentionIndexFunction", redelivered) == {"batchItemFailures": []}

    # Then the erased subject's write is audited once, by HMAC, and the item is kept
    dump = audit_dump()
    assert dump.count("recreation.detected") == 1 and ref in dump and email not in dump
    assert _exists("GuestSessionsTable", {"session_id": again["session_id"]})
    # And the daily digest names it
    summary = deadline_watch.watch(datetime.now(UTC))
    assert summary.recreated == 1 and summary.digest_sent
    digest = sent_mail()[-1]
    text = json.dumps(digest.__dict__, default=str)
    assert "written again" in text and "guest_sessions" in text and email not in text


def test_a_write_in_the_second_its_subject_was_erased_is_flagged(
    aws: Any, invoke: Callable[..., Any], drain_streams: Any
) -> None:
    from lethe.data import ledger
    from lethe.keys import key_ring
    from tests.support.fulfilment import audit_dump

    # Given a service writes a session for a subject
    email = f"soon-{uuid.uuid4().hex[:8]}@example.org"
    _table("GuestSessionsTable").put_item(Item=_session(datetime.now(UTC), guest_email=email))
    written = _stream_records("GuestSessionsTable")[-1]["dynamodb"]["ApproximateCreationDateTime"].astimezone(UTC)
    # And the subject's erasure was recorded earlier in that same second (a Lambda stream record carries
    # whole seconds, so the write's time reaches the function as the start of that second)
    erased_at = written - (written - written.replace(microsecond=0)) / 2
    assert erased_at.replace(microsecond=0) == written.replace(microsecond=0) and erased_at < written
    ledger.record_subject(key_ring().subject_ref(email), reference="req_0123456789abcdef", now=erased_at)

    # When the stream is read
    drain_streams()

    # Then the write is flagged as written again after the erasure
    assert audit_dump().count("recreation.detected") == 1

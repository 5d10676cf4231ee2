"""The local stack wakes a poller only for the writes that give it work (lethe_local.writes): a send to
SQS, a write to a table the stream poller reads, a write to a bucket an S3 dataset lives in. Calls go
through botocore against moto, as the functions' own calls do in the stack's process."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.handlers
import pytest

from lethe_local.writes import WriteWatch, tables_written

WATCHED_TABLE, OTHER_TABLE = "AccountsTable", "RequestsTable"
WATCHED_BUCKET, OTHER_BUCKET = "lethe-feedbacklogbucket", "lethe-exportbucket"


@pytest.fixture
def watch(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteWatch]:
    # The handlers go on a copy of botocore's list, so they leave with the test.
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", list(botocore.handlers.BUILTIN_HANDLERS))
    watch = WriteWatch(stream_tables=lambda: [WATCHED_TABLE], object_buckets=lambda: {WATCHED_BUCKET})
    watch.install()
    yield watch


def client(service: str) -> Any:
    """A client of a session created after the watch was installed, as the stack's functions get."""
    return boto3.session.Session(region_name="us-east-1").client(service)


def generations(watch: WriteWatch) -> tuple[int, int, int]:
    return watch.queues.generation, watch.streams.generation, watch.objects.generation


def test_a_write_to_a_watched_table_wakes_the_stream_poller_alone(watch: WriteWatch) -> None:
    ddb = client("dynamodb")
    ddb.put_item(TableName=WATCHED_TABLE, Item={"account_id": {"S": "acct-w1"}, "email": {"S": "w1@example.org"}})
    assert generations(watch) == (0, 1, 0)
    ddb.update_item(
        TableName=WATCHED_TABLE,
        Key={"account_id": {"S": "acct-w1"}},
        UpdateExpression="SET company = :p",
        ExpressionAttributeValues={":p": {"S": "pro"}},
    )
    ddb.delete_item(TableName=WATCHED_TABLE, Key={"account_id": {"S": "acct-w1"}})
    assert generations(watch) == (0, 3, 0)


def test_batch_and_transaction_writes_wake_it_when_they_touch_a_watched_table(watch: WriteWatch) -> None:
    table = boto3.session.Session(region_name="us-east-1").resource("dynamodb").Table(WATCHED_TABLE)
    with table.batch_writer() as batch:
        batch.put_item(Item={"account_id": "acct-w2", "email": "w2@example.org"})
    assert generations(watch) == (0, 1, 0)

    ddb = client("dynamodb")
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": OTHER_TABLE, "Item": {"pk": {"S": "REQ#w"}, "sk": {"S": "META"}}}},
            {
                "ConditionCheck": {
                    "TableName": WATCHED_TABLE,
                    "Key": {"account_id": {"S": "acct-w2"}},
                    "ConditionExpression": "attribute_exists(account_id)",
                }
            },
        ]
    )
    assert generations(watch) == (0, 1, 0), "a condition check writes nothing to the watched table"
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": OTHER_TABLE, "Item": {"pk": {"S": "REQ#w"}, "sk": {"S": "META2"}}}},
            {"Delete": {"TableName": WATCHED_TABLE, "Key": {"account_id": {"S": "acct-w2"}}}},
        ]
    )
    assert generations(watch) == (0, 2, 0)


def test_reads_and_writes_elsewhere_wake_no_poller(watch: WriteWatch) -> None:
    ddb = client("dynamodb")
    ddb.put_item(TableName=OTHER_TABLE, Item={"pk": {"S": "REQ#x"}, "sk": {"S": "META"}})
    ddb.get_item(TableName=WATCHED_TABLE, Key={"account_id": {"S": "acct-nobody"}})
    ddb.query(
        TableName=WATCHED_TABLE,
        KeyConditionExpression="account_id = :a",
        ExpressionAttributeValues={":a": {"S": "acct-nobody"}},
    )
    s3 = client("s3")
    s3.put_object(Bucket=OTHER_BUCKET, Key="exports/x.json", Body=b"{}")
    s3.list_object_versions(Bucket=WATCHED_BUCKET)
    queue = client("sqs").get_queue_url(QueueName="WorkQueue")["QueueUrl"]
    client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    assert generations(watch) == (0, 0, 0)


def test_a_send_to_sqs_wakes_the_queue_poller(watch: WriteWatch) -> None:
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName="WorkQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="{}")
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "{}"}])
    assert generations(watch) == (2, 0, 0)


def test_a_new_object_in_a_watched_bucket_wakes_the_object_poller(watch: WriteWatch) -> None:
    s3 = client("s3")
    s3.put_object(Bucket=WATCHED_BUCKET, Key="feedback/2026/12/a.jsonl", Body=b"{}\n")
    s3.upload_fileobj(io.BytesIO(b"{}\n"), WATCHED_BUCKET, "feedback/2026/12/b.jsonl")
    s3.copy_object(
        Bucket=WATCHED_BUCKET,
        Key="feedback/2026/12/c.jsonl",
        CopySource={"Bucket": WATCHED_BUCKET, "Key": "feedback/2026/12/a.jsonl"},
    )
    assert generations(watch) == (0, 0, 3)


def test_lethes_own_clients_carry_the_watch(watch: WriteWatch) -> None:
    from lethe.aws import client as lethe_client
    from lethe.aws import reset_clients

    reset_clients()  # the stack installs the watch before Lethe's session exists
    lethe_client("dynamodb").put_item(TableName=WATCHED_TABLE, Item={"account_id": {"S": "acct-w3"}})
    assert generations(watch) == (0, 1, 0)


@pytest.mark.parametrize(
    ("operation", "params", "tables"),
    [
        ("PutItem", {"TableName": "A"}, {"A"}),
        ("BatchWriteItem", {"RequestItems": {"A": [], "B": []}}, {"A", "B"}),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Update": {"TableName": "A"}}, {"ConditionCheck": {"TableName": "B"}}]},
            {"A"},
        ),
        ("GetItem", {"TableName": "A"}, set()),
    ],
)
def test_tables_written_names_what_each_operation_writes(
    operation: str, params: dict[str, Any], tables: set[str]
) -> None:
    assert tables_written(operation, params) == tables

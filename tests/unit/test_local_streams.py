"""The local DynamoDB stream event source mapping: tables that come and go, partial batch failures
read again from the failed record, parking after the retries, as Lambda does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lethe_local.poller import Wakeup
from lethe_local.streams import MAX_RETRIES, StreamPoller, stream_functions


class FakeStreams:
    """The DynamoDB and DynamoDB Streams calls the poller makes, over in-memory tables and records."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.described: list[str] = []

    def add(self, table: str, n: int) -> None:
        records = self.tables.setdefault(table, [])
        for _ in range(n):
            seq = str(1000 + len(records))
            records.append({"eventName": "INSERT", "dynamodb": {"SequenceNumber": seq, "Keys": {"k": {"S": seq}}}})

    def describe_table(self, TableName: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if TableName not in self.tables:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeTable")
        arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TableName}/stream/label"
        return {"Table": {"StreamSpecification": {"StreamEnabled": True}, "LatestStreamArn": arn}}

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        self.described.append(self._table(StreamArn))
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def _table(self, arn: str) -> str:
        return arn.split(":table/")[1].split("/")[0]

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str, **kw: Any) -> dict[str, Any]:
        records = self.tables[self._table(StreamArn)]
        if ShardIteratorType == "TRIM_HORIZON":
            position = 0
        else:
            position = next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == kw["SequenceNumber"])
        return {"ShardIterator": f"{StreamArn}|{position}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        arn, position = ShardIterator.rsplit("|", 1)
        records = self.tables[self._table(arn)][int(position) : int(position) + Limit]
        return {"Records": records, "NextShardIterator": f"{arn}|{int(position) + len(records)}"}


def poller(fake: FakeStreams, tables: list[str], invoke: Any, tmp_path: Path) -> StreamPoller:
    return StreamPoller(fake, fake, lambda: tables, "IndexFunction", invoke, parked=tmp_path, batch_size=10)


def drain(p: StreamPoller) -> None:
    p.refresh()
    while p.poll_once():
        pass


def test_a_failed_record_is_read_again_from_itself_and_the_ones_before_stay_done(tmp_path: Path) -> None:
    # Given three records, and a function that fails the second once
    fake = FakeStreams()
    fake.add("T", 3)
    seen: list[list[str]] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        seen.append(seqs)
        failed = [{"itemIdentifier": "1001"}] if len(seen) == 1 else []
        return {"batchItemFailures": failed}

    # When the stream is read to its end
    drain(poller(fake, ["T"], invoke, tmp_path))

    # Then the second delivery starts at the failed record, and every record carries its stream ARN
    assert seen == [["1000", "1001", "1002"], ["1001", "1002"]]
    assert not list(tmp_path.iterdir())


def test_a_record_failing_past_the_retries_is_parked_and_the_shard_moves_on(tmp_path: Path) -> None:
    fake = FakeStreams()
    fake.add("T", 2)
    calls: list[int] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        assert all(r["eventSourceARN"].endswith("/stream/label") for r in event["Records"])
        return {"batchItemFailures": [{"itemIdentifier": "1001"}]}

    p = poller(fake, ["T"], invoke, tmp_path)
    drain(p)

    assert len(calls) == MAX_RETRIES + 1
    assert [path.name for path in tmp_path.iterdir()] == ["stream-shard-1-1001.json"]
    assert p.caught_up()


def test_tables_that_appear_later_are_read_from_their_start_and_gone_ones_dropped(tmp_path: Path) -> None:
    fake = FakeStreams()
    tables = ["Early"]
    fake.add("Early", 1)
    delivered: list[str] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        delivered.extend(r["eventSourceARN"].split("/")[1] for r in event["Records"])
        return {"batchItemFailures": []}

    p = poller(fake, tables, invoke, tmp_path)
    drain(p)
    # When a table is created after the poller started, with records already on its stream
    fake.add("Later", 2)
    tables.append("Later")
    drain(p)
    # And the first one is deleted
    del fake.tables["Early"]
    drain(p)

    assert delivered == ["Early", "Later", "Later"]
    assert p.caught_up()


def test_the_stream_function_is_the_one_the_template_maps_streams_to() -> None:
    from lethe_local.template import load_template

    assert stream_functions(load_template()) == ["RetentionIndexFunction"]


def test_caught_up_waits_for_a_read_begun_after_the_last_function_ran(tmp_path: Path) -> None:
    # Given a poller that has read everything, sharing the stack's wake-up
    fake, wakeup = FakeStreams(), Wakeup()
    fake.add("T", 2)
    p = StreamPoller(fake, fake, lambda: ["T"], "IndexFunction", lambda f, e: None, parked=tmp_path, wakeup=wakeup)
    drain(p)
    assert p.caught_up() is True

    # When a function runs (it may have written a record the last read could not see)
    wakeup.set()

    # Then the poller is not caught up until it has read again
    assert p.caught_up() is False
    assert p.poll_once() is False
    assert p.caught_up() is True


def test_a_stream_is_described_once_while_its_shards_stay_open(tmp_path: Path) -> None:
    # Given two tables whose streams the poller has found
    fake = FakeStreams()
    fake.add("T", 1)
    fake.add("U", 1)
    p = poller(fake, ["T", "U"], lambda f, e: None, tmp_path)
    p.refresh()

    # When the tables are looked up again, twice
    p.refresh()
    p.refresh()

    # Then each stream's shards were listed only when it was new
    assert sorted(fake.described) == ["T", "U"]

"""The local DynamoDB stream event source mapping: reads the streams of the inventory's tables and
invokes the function the template maps dataset streams to, as Lambda does.

Tables are looked up again every few seconds, so a table (or a stream) that appears after the stack
started is read from its first record (TRIM_HORIZON), and one that is deleted is dropped. With
ReportBatchItemFailures, a batch whose function lists a failed record is read again from that
record (the ones before it stay done); after MAX_RETRIES the records from it on are parked under
<local dir>/parked/ and the shard moves on, as Lambda does once MaximumRetryAttempts is spent.

Between empty rounds it backs off as the queue poller does (lethe_local.poller), and is woken by a
function's write to one of the tables (lethe_local.writes): such a record is read at once; one written
from outside the process may wait up to IDLE_MAX_SECONDS. `caught_up()` counts only a round that started
after the last such write, so a wait for "drained" right after an invocation never trusts a read from
before it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lethe_local.poller import Backoff, PollingThread, Wakeup

REFRESH_SECONDS = 2.0
BATCH_SIZE = 100
MAX_RETRIES = 3


@dataclass
class _Shard:
    stream_arn: str
    shard_id: str
    iterator: str | None
    retries: int = 0
    caught_up: bool = False


@dataclass
class _Stream:
    arn: str
    shards: dict[str, _Shard] = field(default_factory=dict)


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to a function: with its stream's ARN, and the
    creation time in epoch seconds."""
    images = dict(record["dynamodb"])
    created = images.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        images["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**{k: v for k, v in record.items() if k != "dynamodb"}, "dynamodb": images, "eventSourceARN": stream_arn}


def stream_functions(template: dict[str, Any]) -> list[str]:
    """The functions that template.yaml maps DynamoDB streams to (AWS::Lambda::EventSourceMapping;
    SQS sources are SAM events of the function itself)."""
    found: list[str] = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        target = resource.get("Properties", {}).get("FunctionName")
        if isinstance(target, dict) and isinstance(target.get("Ref"), str) and target["Ref"] not in found:
            found.append(target["Ref"])
    return found


class StreamPoller(PollingThread):
    """Polls every shard of every stream of `tables()` until `stop()`."""

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        tables: Callable[[], list[str]],
        function: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        parked: Path | None = None,
        batch_size: int = BATCH_SIZE,
        wakeup: Wakeup | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__("lethe-stream-poller", wakeup=wakeup, backoff=backoff)
        self.dynamodb, self.streams, self.tables = dynamodb, streams, tables
        self.function, self.invoke = function, invoke
        self.parked = parked or Path(".local") / "parked"
        self.batch_size = batch_size
        self._streams: dict[str, _Stream] = {}
        self._refreshed = 0.0
        self._read_after: int | None = None  # the wakeup generation when the last whole round began

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                busy = self.poll_once()
            except Exception as exc:  # the endpoint went away or a call failed: report and keep polling
                self.errors += 1
                busy = False
                if not self._stop_event.is_set():
                    print(f"  ! stream poller: {type(exc).__name__}: {exc}", flush=True)
                    self._stop_event.wait(1)
            self.idle(busy)

    def caught_up(self) -> bool:
        """Every known shard returned no records on its last read, in a round begun after the last
        write to one of the tables."""
        if self._read_after != self.wakeup.generation:
            return False
        return all(s.caught_up for stream in list(self._streams.values()) for s in list(stream.shards.values()))

    def refresh(self) -> None:
        """Find the streams of the tables as they are now: new ones from their start, gone ones dropped."""
        current: dict[str, str] = {}
        for table in self.tables():
            try:
                described = self.dynamodb.describe_table(TableName=table)["Table"]
            except ClientError:
                continue  # not created yet (real tables come and go)
            if (described.get("StreamSpecification") or {}).get("StreamEnabled") and described.get("LatestStreamArn"):
                current[described["LatestStreamArn"]] = table
        for arn in [a for a in self._streams if a not in current]:
            del self._streams[arn]
        for arn in current:
            known = self._streams.get(arn)
            if known is not None and known.shards and all(s.iterator is not None for s in known.shards.values()):
                continue  # its shards are all open: a new one appears only when one of them ends
            stream = self._streams.setdefault(arn, _Stream(arn))
            shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"].get("Shards", [])
            for shard in shards:
                if shard["ShardId"] not in stream.shards:
                    iterator = self.streams.get_shard_iterator(
                        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                    )["ShardIterator"]
                    stream.shards[shard["ShardId"]] = _Shard(arn, shard["ShardId"], iterator)
        self._refreshed = time.monotonic()

    def poll_once(self) -> bool:
        """Refresh the streams when due, then read one batch of each shard; False if all were empty."""
        began = self.wakeup.generation
        if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
            self.refresh()
        busy = False
        for stream in list(self._streams.values()):
            for shard in list(stream.shards.values()):
                busy = self._poll_shard(shard) or busy
        self._read_after = began
        return busy

    def _poll_shard(self, shard: _Shard) -> bool:
        if shard.iterator is None:
            shard.caught_up = True
            return False
        page = self.streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        records = page.get("Records", [])
        if not records:
            shard.iterator = page.get("NextShardIterator")
            shard.caught_up = True
            return False
        shard.caught_up = False
        event = {"Records": [lambda_record(r, shard.stream_arn) for r in records]}
        try:
            result = self.invoke(self.function, event)
        except Exception as exc:  # like Lambda: an exception fails the whole batch
            print(f"  ! {self.function} raised {type(exc).__name__}; the stream batch will be retried", flush=True)
            failed: str | None = records[0]["dynamodb"]["SequenceNumber"]
        else:
            failed = _first_failure(result, records)
        if failed is None:
            shard.iterator, shard.retries = page.get("NextShardIterator"), 0
            return True
        shard.retries += 1
        if shard.retries > MAX_RETRIES:
            self._park(shard, [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= int(failed)])
            shard.iterator, shard.retries = page.get("NextShardIterator"), 0
            return True
        shard.iterator = self.streams.get_shard_iterator(
            StreamArn=shard.stream_arn,
            ShardId=shard.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=failed,
        )["ShardIterator"]
        return True

    def _park(self, shard: _Shard, records: list[dict[str, Any]]) -> None:
        self.parked.mkdir(parents=True, exist_ok=True)
        first = records[0]["dynamodb"]["SequenceNumber"] if records else "none"
        path = self.parked / f"stream-{shard.shard_id}-{first}.json"
        body = {"function": self.function, "stream": shard.stream_arn, "records": records}
        path.write_text(json.dumps(body, indent=2, default=str))
        print(
            f"  ! {self.function} failed stream records {MAX_RETRIES + 1} times; parked {len(records)} in {path} "
            "(Lambda would stop retrying them after MaximumRetryAttempts)",
            flush=True,
        )


def _first_failure(result: Any, records: list[dict[str, Any]]) -> str | None:
    """The lowest sequence number the function reported failed, if any."""
    if not isinstance(result, dict):
        return None
    listed = {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or [] if isinstance(f, dict)}
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records if r["dynamodb"]["SequenceNumber"] in listed]
    return min(numbers, key=int) if numbers else None

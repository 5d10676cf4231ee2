"""The S3 subject index and retention: a redelivered ObjectCreated event indexes once, the backfill
finds objects written before the events reached Lethe, and a retention run removes (or masks) the due
rows of every object and version, leaving the rest."""

from __future__ import annotations

import csv
import io
import json

from lethe.domain import RequestType
from tests.support.fulfilment import unique_email
from tests.support.s3_datasets import (
    INDEXER,
    NOW,
    OLD,
    RECENT,
    Invoke,
    buckets,
    current,
    every_version,
    export_of,
    jsonl_row,
    object_created,
    put_csv,
    put_jsonl,
    run,
)

__all__ = ["buckets"]


def test_redelivered_object_event_indexes_once(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.aws import client
    from lethe.settings import get_settings

    me, a = unique_email("me"), unique_email("a")
    jb = buckets["jsonl_bucket"]
    put_jsonl(jb, "logs/x.jsonl", [jsonl_row(me, "one"), jsonl_row(a, "two"), jsonl_row(me, "three")])
    event = object_created(jb, "logs/x.jsonl")
    assert invoke(INDEXER, event) == {"objects": 1, "entries": 2}
    assert invoke(INDEXER, event) == {"objects": 1, "entries": 2}
    table = get_settings().object_index_table
    assert client("dynamodb").scan(TableName=table, Select="COUNT")["Count"] == 2
    # An object outside every dataset's prefix is nobody's business
    put_jsonl(jb, "elsewhere/y.jsonl", [jsonl_row(me, "x")])
    assert invoke(INDEXER, object_created(jb, "elsewhere/y.jsonl")) == {"objects": 0, "entries": 0}


def test_backfill_indexes_objects_written_before_events(invoke: Invoke, buckets: dict[str, str]) -> None:
    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    jb = buckets["jsonl_bucket"]
    put_jsonl(jb, "logs/old.jsonl", [jsonl_row(me, "from before Lethe"), jsonl_row(others[0], "x")])
    assert invoke(INDEXER, {"backfill": "chat_logs"}) == {"objects": 1, "entries": 2}
    export = export_of(run(invoke, RequestType.access, me))
    assert [row["console_log"] for row in export["datasets"]["chat_logs"]["items"]] == ["from before Lethe"]


def test_retention_removes_or_masks_due_rows_only(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.logic import retention

    me, a = unique_email("me"), unique_email("a")
    jb, cb = buckets["jsonl_bucket"], buckets["csv_bucket"]
    put_jsonl(jb, "logs/r.jsonl", [jsonl_row(me, "old chat", OLD), jsonl_row(a, "new chat", RECENT), "{broken"])
    put_csv(cb, "sheets/r.csv", [[me, "old chat", OLD], [a, "new chat", RECENT]])
    # The dry run counts, and writes nothing
    report = retention.report(NOW)
    assert report.datasets["chat_logs"].would_delete == 1
    assert report.datasets["chat_sheets"].would_anonymize == 1
    assert b"old chat" in current(jb, "logs/r.jsonl")
    # When the sweep runs
    for task in retention.plan(NOW, retention.new_run_id()):
        retention.execute(task)
    # Then the due rows are gone (JSON Lines) or masked (CSV), in every version; the rest is as it was
    assert current(jb, "logs/r.jsonl").decode().splitlines() == [
        json.dumps(jsonl_row(a, "new chat", RECENT)),
        "{broken",
    ]
    sheet = list(csv.DictReader(io.StringIO(current(cb, "sheets/r.csv").decode())))
    assert [row["console_log"] for row in sheet] == ["", "new chat"]
    for bucket in (jb, cb):
        assert all(b"old chat" not in body for body in every_version(bucket))

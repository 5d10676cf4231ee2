"""Parquet S3 datasets through the real workers: access exports only the subject's rows, erasure
rewrites each object without them (or masked) in the object's own schema with every other row as it
was and no version left holding them, retention removes or masks the due rows, and an object that
is not Parquet is reported and left as it is."""

from __future__ import annotations

import io
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.fulfilment import unique_email
from tests.support.s3_datasets import INDEXER, NOW, OLD, RECENT, Invoke, current, export_of, object_created, run
from tests.support.s3_parquet import parquet_buckets, put_parquet, row, rows_in, schema, table_of, versions

__all__ = ["parquet_buckets"]
ADDRESS = "my address is 1 Secret Lane"


def seed(invoke: Invoke, names: dict[str, str], me: str, a: str, b: str) -> None:
    db, mb = names["deleted_bucket"], names["masked_bucket"]
    put_parquet(db, "tables/1.parquet", [row(me, ADDRESS, attempts=7), row(a, "hello", attempts=2)])
    put_parquet(db, "tables/2.parquet", [row(b, "hi", attempts=3), row(me.upper(), "see you at 1 Secret Lane")])
    put_parquet(db, "tables/3.parquet", [row(a, "nothing of mine", attempts=4)])
    put_parquet(mb, "masked/1.parquet", [row(me, "call me at 1 Secret Lane"), row(a, "ok, bye", attempts=5)])
    for bucket, key in ((db, "tables/1.parquet"), (db, "tables/2.parquet"), (db, "tables/3.parquet")):
        assert invoke(INDEXER, object_created(bucket, key))["objects"] == 1
    assert invoke(INDEXER, {"backfill": "chat_masked"}) == {"objects": 1, "entries": 2}


def test_access_exports_only_the_subjects_rows(invoke: Invoke, parquet_buckets: dict[str, str]) -> None:
    me, a, b = unique_email("me"), unique_email("a"), unique_email("b")
    seed(invoke, parquet_buckets, me, a, b)
    export = export_of(run(invoke, RequestType.access, me))
    tables = export["datasets"]["chat_tables"]["items"]
    assert sorted((r["console_log"], r["attempts"]) for r in tables) == [
        (ADDRESS, 7),
        ("see you at 1 Secret Lane", 1),
    ]
    assert [r["console_log"] for r in export["datasets"]["chat_masked"]["items"]] == ["call me at 1 Secret Lane"]
    text = json.dumps(export)
    assert a not in text and b not in text


def _all_rows(bucket: str) -> list[dict[str, Any]]:
    return [r for _key, body in versions(bucket) for r in rows_in(body)]


def test_erasure_rewrites_only_the_subjects_rows_in_every_version(
    invoke: Invoke, parquet_buckets: dict[str, str]
) -> None:
    from lethe.logic.requests import get_request

    me, a, b = unique_email("me"), unique_email("a"), unique_email("b")
    seed(invoke, parquet_buckets, me, a, b)
    db, mb = parquet_buckets["deleted_bucket"], parquet_buckets["masked_bucket"]
    untouched = current(db, "tables/3.parquet")
    request_id = run(invoke, RequestType.erasure, me)
    request = get_request(request_id)
    assert request.status is Status.completed
    # No version of any object holds the subject's address, chat or email
    for bucket in (db, mb):
        for r in _all_rows(bucket):
            assert "Secret Lane" not in (r["console_log"] or "")
            assert r["reporter_email"].lower() != me
    # The others' rows are exactly as they were, in the object's own schema (metadata included)
    assert rows_in(current(db, "tables/1.parquet")) == [row(a, "hello", attempts=2)]
    assert rows_in(current(db, "tables/2.parquet")) == [row(b, "hi", attempts=3)]
    assert table_of(current(db, "tables/1.parquet")).schema.equals(schema(), check_metadata=True)
    assert current(db, "tables/3.parquet") == untouched
    # Anonymize: the row stays, pseudonymized, its chat removed (null), the other row unchanged
    masked = rows_in(current(mb, "masked/1.parquet"))
    assert [r["console_log"] for r in masked] == [None, "ok, bye"]
    assert masked[0]["reporter_email"] not in ("", me)
    assert masked[0]["attempts"] == 1
    assert masked[1] == row(a, "ok, bye", attempts=5)
    assert table_of(current(mb, "masked/1.parquet")).schema.equals(schema(), check_metadata=True)
    outcome = (request.outcome or {})["datasets"]
    assert outcome["chat_tables"]["deleted"] == 2
    assert outcome["chat_masked"]["anonymized"] == 1
    assert outcome["chat_tables"]["remaining"] == 0
    assert outcome["chat_masked"]["remaining"] == 0


def test_retention_removes_or_masks_due_rows_only(invoke: Invoke, parquet_buckets: dict[str, str]) -> None:
    from lethe.logic import retention

    me, a = unique_email("me"), unique_email("a")
    db, mb = parquet_buckets["deleted_bucket"], parquet_buckets["masked_bucket"]
    put_parquet(db, "tables/r.parquet", [row(me, "old chat", OLD), row(a, "new chat", RECENT, attempts=9)])
    put_parquet(mb, "masked/r.parquet", [row(me, "old chat", OLD), row(a, "new chat", RECENT, attempts=9)])
    report = retention.report(NOW)
    assert report.datasets["chat_tables"].would_delete == 1
    assert report.datasets["chat_masked"].would_anonymize == 1
    assert [r["console_log"] for r in rows_in(current(db, "tables/r.parquet"))] == ["old chat", "new chat"]
    for task in retention.plan(NOW, retention.new_run_id()):
        retention.execute(task)
    assert rows_in(current(db, "tables/r.parquet")) == [row(a, "new chat", RECENT, attempts=9)]
    masked = rows_in(current(mb, "masked/r.parquet"))
    assert [r["console_log"] for r in masked] == [None, "new chat"]
    assert masked[1] == row(a, "new chat", RECENT, attempts=9)
    for bucket in (db, mb):
        assert all(r["console_log"] != "old chat" for r in _all_rows(bucket))


def test_an_unreadable_object_is_reported_and_left_as_it_is(invoke: Invoke, parquet_buckets: dict[str, str]) -> None:
    from lethe.aws import client
    from lethe.data.request_tasks import task_results

    me, a, b = unique_email("me"), unique_email("a"), unique_email("b")
    seed(invoke, parquet_buckets, me, a, b)
    db = parquet_buckets["deleted_bucket"]
    # An object under the prefix that is not Parquet at all indexes nobody, and does not fail the event
    put_parquet(db, "tables/bad.parquet", b"PAR1 this is not parquet " + me.encode() + b" PAR1")
    assert invoke(INDEXER, object_created(db, "tables/bad.parquet")) == {"objects": 1, "entries": 0}
    # A damaged copy of an object that holds the subject, under a key the index names: the first
    # object is overwritten by truncated bytes (a new version), so the erasure meets it
    good = current(db, "tables/1.parquet")
    put_parquet(db, "tables/1.parquet", good[: len(good) // 2] + good[-12:])
    broken = current(db, "tables/1.parquet")
    request_id = run(invoke, RequestType.erasure, me)
    results = task_results(request_id)
    assert results["chat_tables"]["unparseable"] == {"tables/1.parquet": 1}
    assert current(db, "tables/1.parquet") == broken
    assert current(db, "tables/bad.parquet").startswith(b"PAR1 this is not parquet")
    # The readable object with the subject was still rewritten
    assert rows_in(current(db, "tables/2.parquet")) == [row(b, "hi", attempts=3)]
    head = client("s3").head_object(Bucket=db, Key="tables/1.parquet")
    assert head.get("Metadata", {}).get("lethe-rewrite") is None


def test_a_large_object_is_rewritten_by_multipart_upload(
    invoke: Invoke, parquet_buckets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lethe.aws import client
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_S3_PART_BYTES", str(5 * 1024 * 1024))
    get_settings.cache_clear()
    me, a = unique_email("me"), unique_email("a")
    db = parquet_buckets["deleted_bucket"]
    # About 6.5 MB that does not compress, in row groups of 500 rows: more than one part
    rows = [row(a, secrets.token_hex(500), attempts=i) for i in range(6500)]
    rows.insert(3210, row(me, ADDRESS))
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema()), out, row_group_size=500, compression="none")
    put_parquet(db, "tables/big.parquet", out.getvalue())
    assert invoke(INDEXER, object_created(db, "tables/big.parquet")) == {"objects": 1, "entries": 2}
    run(invoke, RequestType.erasure, me)
    head = client("s3").head_object(Bucket=db, Key="tables/big.parquet")
    assert head["ETag"].strip('"').endswith("-2")  # two parts, completed conditionally
    assert rows_in(current(db, "tables/big.parquet")) == [r for r in rows if r["reporter_email"] == a]
    assert [key for key, _body in versions(db)] == ["tables/big.parquet"]  # the old version is gone


def test_timestamp_columns_are_judged_and_exported(invoke: Invoke, parquet_buckets: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lethe.logic import retention

    me, a = unique_email("me"), unique_email("a")
    db = parquet_buckets["deleted_bucket"]
    stamped = pa.schema(
        [("reporter_email", pa.string()), ("console_log", pa.string()), ("submitted_at", pa.timestamp("us", tz="UTC"))]
    )
    rows = [
        {"reporter_email": me, "console_log": "old chat", "submitted_at": NOW - timedelta(days=400)},
        {"reporter_email": me, "console_log": "new chat", "submitted_at": NOW - timedelta(days=3)},
        {"reporter_email": a, "console_log": "other", "submitted_at": NOW - timedelta(days=3)},
    ]
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=stamped), out)
    put_parquet(db, "tables/t.parquet", out.getvalue())
    invoke(INDEXER, object_created(db, "tables/t.parquet"))
    for task in retention.plan(NOW, retention.new_run_id()):
        retention.execute(task)
    kept = table_of(current(db, "tables/t.parquet"))
    assert kept.schema.equals(stamped)
    assert kept.column("console_log").to_pylist() == ["new chat", "other"]
    items = export_of(run(invoke, RequestType.access, me))["datasets"]["chat_tables"]["items"]
    assert [(r["console_log"], r["submitted_at"][:10]) for r in items] == [
        ("new chat", (NOW - timedelta(days=3)).date().isoformat())
    ]


def test_a_function_without_pyarrow_names_the_dataset_unavailable(
    invoke: Invoke, parquet_buckets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from lethe.logic import retention

    put_parquet(parquet_buckets["deleted_bucket"], "tables/r.parquet", [row(unique_email("me"), "old chat", OLD)])
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    report = retention.report(NOW)
    error = report.datasets["chat_tables"].error or ""
    assert error == "dataset chat_tables: Parquet objects are read by the workers; this function does not ship pyarrow"
    assert report.datasets["chat_tables"].would_delete == 0

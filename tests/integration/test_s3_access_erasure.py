"""S3 datasets (store: s3) through the real worker: an access export holds only the subject's rows
from the objects the index names; an erasure rewrites each of them without the subject (or masked),
deletes the old versions that held them, keeps every other row and every unparseable row as it was,
and is proven by reading every version again."""

from __future__ import annotations

import csv
import io
import json

from lethe.domain import RequestType, Status
from tests.support.fulfilment import unique_email
from tests.support.s3_datasets import (
    Invoke,
    buckets,
    current,
    every_version,
    export_of,
    rows_of,
    run,
    seed,
)

__all__ = ["buckets"]


def test_access_exports_only_the_subjects_rows(invoke: Invoke, buckets: dict[str, str]) -> None:
    # Given logs that mix the subject with two others
    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    # When the subject asks for access
    request_id = run(invoke, RequestType.access, me)
    # Then the export holds their three rows, with the dataset's context, and nobody else's
    export = export_of(request_id)
    logs = export["datasets"]["chat_logs"]
    assert sorted(row["console_log"] for row in logs["items"]) == [
        "my address is 1 Secret Lane",
        "see you at 1 Secret Lane",
    ]
    sheets = export["datasets"]["chat_sheets"]
    assert [row["console_log"] for row in sheets["items"]] == ["call me at 1 Secret Lane"]
    assert logs["purposes"] == ["support"]
    text = json.dumps(export)
    assert all(other not in text for other in others)


def test_erasure_rewrites_only_the_subjects_rows_in_every_version(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.logic.requests import get_request

    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    jb, cb = buckets["jsonl_bucket"], buckets["csv_bucket"]
    before = {(bucket, who): rows_of(bucket, who) for bucket in (jb, cb) for who in others}
    untouched = current(jb, "logs/3.jsonl")
    # When the subject's erasure runs
    request_id = run(invoke, RequestType.erasure, me)
    # Then it is certified: no version of any object holds their address or their chat
    request = get_request(request_id)
    assert request.status is Status.completed
    for bucket in (jb, cb):
        for body in every_version(bucket):
            assert me.encode() not in body.lower()
            assert b"Secret Lane" not in body
    # and every other subject's rows are intact, the broken line and the ragged row kept as they were
    assert {(bucket, who): rows_of(bucket, who) for bucket in (jb, cb) for who in others} == before
    assert b"{broken\n" in current(jb, "logs/1.jsonl")
    assert current(cb, "sheets/2.csv").endswith(b"ragged,row\n")
    assert current(jb, "logs/3.jsonl") == untouched
    # JSON Lines rows are deleted; CSV rows are masked in place (the row stays, pseudonymized, chat emptied)
    assert current(jb, "logs/2.jsonl").decode().count("\n") == 1
    sheet = list(csv.DictReader(io.StringIO(current(cb, "sheets/1.csv").decode())))
    assert [row["console_log"] for row in sheet] == ["", "ok, bye"]
    assert sheet[0]["reporter_email"] not in ("", me)
    outcome = (request.outcome or {})["datasets"]
    assert outcome["chat_logs"]["deleted"] == 2
    assert outcome["chat_sheets"]["anonymized"] == 1
    assert outcome["chat_logs"]["remaining"] == 0


def test_unparseable_rows_are_reported_per_object(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.data.request_tasks import task_results

    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    request_id = run(invoke, RequestType.erasure, me)
    results = task_results(request_id)
    assert results["chat_logs"]["unparseable"] == {"logs/1.jsonl": 1}
    assert results["chat_sheets"]["unparseable"] is None  # the ragged row is in an object without the subject

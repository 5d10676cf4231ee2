"""S3 datasets (store: s3) through the real functions on moto: objects are indexed from their
ObjectCreated events, an access export holds only the subject's rows, an erasure rewrites every
object holding them (and deletes the old versions that do) with every other row intact, a concurrent
change is never overwritten, a redelivery applies once, and retention removes the due rows."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.fulfilment import drain, new_request, unique_email

Invoke = Callable[..., Any]
INDEXER = "ObjectIndexFunction"
NOW = datetime.now(UTC)
RECENT = (NOW - timedelta(days=3)).isoformat(timespec="seconds")
OLD = (NOW - timedelta(days=400)).isoformat(timespec="seconds")

INVENTORY = """
version: 1
datasets:
  chat_logs:
    store: s3
    bucket: {jsonl_bucket}
    prefix: logs/
    format: jsonl
    description: Console logs as JSON Lines
    controller: self
    subject: {{attribute: reporter_email}}
    fields:
      reporter_email: {{category: user.contact.email, erase: pseudonymize}}
      console_log: {{category: user.content.chat, erase: remove}}
    purposes: [support]
    retention: {{since: submitted_at, after: P180D, action: delete}}
    on_erasure: delete
  chat_sheets:
    store: s3
    bucket: {csv_bucket}
    prefix: sheets/
    format: csv
    description: Console logs as CSV
    controller: self
    subject: {{attribute: reporter_email}}
    fields:
      reporter_email: {{category: user.contact.email, erase: pseudonymize}}
      console_log: {{category: user.content.chat, erase: remove}}
    purposes: [support]
    retention: {{since: submitted_at, after: P180D, action: anonymize}}
    on_erasure: anonymize
"""


@pytest.fixture
def buckets(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Two versioned buckets and an inventory naming them (one JSON Lines dataset, one CSV)."""
    from lethe.aws import client
    from lethe.data import s3store
    from lethe.inventory import cached_inventory
    from lethe.settings import get_settings

    names = {"jsonl_bucket": f"logs-{uuid.uuid4().hex[:8]}", "csv_bucket": f"sheets-{uuid.uuid4().hex[:8]}"}
    s3 = client("s3")
    for name in names.values():
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY.format(**names))
    monkeypatch.setenv("LETHE_INVENTORY", str(path))
    get_settings.cache_clear()
    cached_inventory.cache_clear()
    s3store._versioned.clear()
    yield names
    s3store._versioned.clear()


def jsonl_row(email: str, chat: str, when: str = RECENT) -> dict[str, Any]:
    return {"reporter_email": email, "console_log": chat, "submitted_at": when, "level": "info"}


def put_jsonl(bucket: str, key: str, rows: list[dict[str, Any] | str]) -> None:
    from lethe.aws import client

    body = "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())


def put_csv(bucket: str, key: str, rows: list[list[str]] | str) -> None:
    from lethe.aws import client

    if isinstance(rows, str):
        body = rows
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["reporter_email", "console_log", "submitted_at"])
        writer.writerows(rows)
        body = out.getvalue()
    client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())


def object_created(bucket: str, key: str) -> dict[str, Any]:
    """The EventBridge event S3 sends for the object's latest version."""
    from lethe.aws import client

    version = client("s3").head_object(Bucket=bucket, Key=key)["VersionId"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": NOW.isoformat(),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "version-id": version, "size": 1},
            "reason": "PutObject",
        },
    }


def every_version(bucket: str) -> list[bytes]:
    from lethe.aws import client

    s3 = client("s3")
    bodies = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            got = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
            bodies.append(got["Body"].read())
    return bodies


def current(bucket: str, key: str) -> bytes:
    from lethe.aws import client

    return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


def run(invoke: Invoke, kind: RequestType, email: str) -> str:
    from lethe.logic import fulfilment

    request_id = new_request(kind, email)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    return request_id


def export_of(request_id: str) -> dict[str, Any]:
    from lethe.aws import client
    from lethe.settings import get_settings

    body = client("s3").get_object(Bucket=get_settings().export_bucket, Key=f"exports/{request_id}/export.json")
    return json.loads(body["Body"].read())  # type: ignore[no-any-return]


def seed(invoke: Invoke, buckets: dict[str, str], me: str, others: list[str]) -> None:
    """Three JSON Lines objects (the subject in two of them, with a broken line in one) and two CSV
    objects (the subject in one, with a ragged row), each indexed from its ObjectCreated event."""
    a, b = others
    jb, cb = buckets["jsonl_bucket"], buckets["csv_bucket"]
    put_jsonl(jb, "logs/1.jsonl", [jsonl_row(me, "my address is 1 Secret Lane"), jsonl_row(a, "hello"), "{broken"])
    put_jsonl(jb, "logs/2.jsonl", [jsonl_row(b, "hi"), jsonl_row(me.upper(), "see you at 1 Secret Lane")])
    put_jsonl(jb, "logs/3.jsonl", [jsonl_row(a, "nothing of mine")])
    put_csv(cb, "sheets/1.csv", [[me, "call me at 1 Secret Lane", RECENT], [a, "ok, bye", RECENT]])
    put_csv(cb, "sheets/2.csv", "reporter_email,console_log,submitted_at\n" + f"{b},fine,{RECENT}\nragged,row\n")
    for bucket, key in ((jb, "logs/1.jsonl"), (jb, "logs/2.jsonl"), (jb, "logs/3.jsonl"), (cb, "sheets/1.csv"), (cb, "sheets/2.csv")):
        invoke(INDEXER, object_created(bucket, key))


def rows_of(bucket: str, who: str) -> int:
    return sum(body.decode().lower().count(who.lower()) for body in [*_current_bodies(bucket)])


def _current_bodies(bucket: str) -> list[bytes]:
    from lethe.aws import client

    s3 = client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return [current(bucket, key) for key in keys]


def test_access_exports_only_the_subjects_rows(invoke: Invoke, buckets: dict[str, str]) -> None:
    # Given logs that mix the subject with two others
    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    # When the subject asks for access
    request_id = run(invoke, RequestType.access, me)
    # Then the export holds their three rows, with the dataset's context, and nobody else's
    export = export_of(request_id)
    logs = export["datasets"]["chat_logs"]
    assert sorted(row["console_log"] for row in logs["items"]) == ["my address is 1 Secret Lane", "see you at 1 Secret Lane"]
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
    from lethe.logic.fulfilment import task_results

    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    request_id = run(invoke, RequestType.erasure, me)
    results = task_results(request_id)
    assert results["chat_logs"]["unparseable"] == {"logs/1.jsonl": 1}
    assert results["chat_sheets"]["unparseable"] is None  # the ragged row is in an object without the subject


def test_redelivered_erasure_applies_once(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.aws import client
    from lethe.logic import fulfilment

    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    jb = buckets["jsonl_bucket"]
    request_id = new_request(RequestType.erasure, me)
    fulfilment.start(request_id)
    kept: list[dict[str, Any]] = []
    assert drain(invoke, keep=kept) == []
    versions = client("s3").list_object_versions(Bucket=jb)["Versions"]
    # When every task is delivered again
    for event in kept:
        invoke("FulfilmentWorkerFunction", event)
    # Then nothing more is written: the same versions, the same rows
    assert client("s3").list_object_versions(Bucket=jb)["Versions"] == versions
    # and the dataset task itself, run again directly, finds nothing left to change
    from lethe.data import s3store
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring

    again = s3store.erase_subject(get_inventory().dataset("chat_logs"), [me], key_ring(), mask=None, now=NOW)
    assert (again.found, again.deleted, again.objects_rewritten) == (0, 0, 0)


def test_a_concurrent_change_is_not_overwritten(invoke: Invoke, buckets: dict[str, str]) -> None:
    import boto3

    from lethe.aws import client
    from lethe.data import s3store
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring

    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    jb = buckets["jsonl_bucket"]
    late = unique_email("late")
    writer = boto3.client("s3", region_name="us-east-1")
    s3 = client("s3")
    fired: list[str] = []

    def someone_writes_first(params: dict[str, Any], **_: Any) -> None:
        # Between Lethe's read and its write, the service appends a row to the object.
        if params.get("Key") == "logs/1.jsonl" and not fired:
            fired.append("x")
            body = current(jb, "logs/1.jsonl") + (json.dumps(jsonl_row(late, "just now")) + "\n").encode()
            writer.put_object(Bucket=jb, Key="logs/1.jsonl", Body=body)

    s3.meta.events.register("before-parameter-build.s3.PutObject", someone_writes_first)
    try:
        done = s3store.erase_subject(get_inventory().dataset("chat_logs"), [me], key_ring(), mask=None, now=NOW)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.PutObject", someone_writes_first)
    # Then the conditional write was refused, the object read again, and the late row kept
    assert fired == ["x"]
    body = current(jb, "logs/1.jsonl").decode()
    assert late in body
    assert me not in body.lower()
    assert others[0] in body
    assert done.deleted == 2


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


def test_an_unversioned_bucket_is_refused_naming_the_dataset(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.aws import client
    from lethe.data import s3store
    from lethe.errors import ConfigurationError
    from lethe.inventory import get_inventory

    client("s3").put_bucket_versioning(
        Bucket=buckets["csv_bucket"], VersioningConfiguration={"Status": "Suspended"}
    )
    with pytest.raises(ConfigurationError, match="dataset chat_sheets: bucket .* is not versioned"):
        s3store.require_versioning(get_inventory().dataset("chat_sheets"))


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
    assert current(jb, "logs/r.jsonl").decode().splitlines() == [json.dumps(jsonl_row(a, "new chat", RECENT)), "{broken"]
    sheet = list(csv.DictReader(io.StringIO(current(cb, "sheets/r.csv").decode())))
    assert [row["console_log"] for row in sheet] == ["", "new chat"]
    for bucket in (jb, cb):
        assert all(b"old chat" not in body for body in every_version(bucket))

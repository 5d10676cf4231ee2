"""Helpers for the S3 dataset tests: two versioned buckets named by an inventory of their own (one
JSON Lines dataset, one CSV), rows that mix subjects, and the ObjectCreated events S3 would send.

Import `buckets` into a test module to use it as a fixture."""

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

from lethe.domain import RequestType
from tests.support.fulfilment import drain, new_request

Invoke = Callable[..., Any]
INDEXER = "ObjectIndexFunction"
NOW = datetime.now(UTC)
RECENT = (NOW - timedelta(days=3)).isoformat(timespec="seconds")
OLD = (NOW - timedelta(days=400)).isoformat(timespec="seconds")


def chat_dataset(name: str, *, bucket: str, prefix: str, fmt: str, described: str, action: str) -> str:
    """One S3 dataset of console logs, as a block of an inventory template: `bucket` names the placeholder
    its bucket is filled in by (versioned_buckets formats the template), `action` is what both its
    retention and an erasure do."""
    return f"""  {name}:
    store: s3
    bucket: {{{bucket}}}
    prefix: {prefix}
    format: {fmt}
    description: {described}
    controller: self
    subject: {{{{attribute: reporter_email}}}}
    fields:
      reporter_email: {{{{category: user.contact.email, erase: pseudonymize}}}}
      console_log: {{{{category: user.content.chat, erase: remove}}}}
    purposes: [support]
    retention: {{{{since: submitted_at, after: P180D, action: {action}}}}}
    on_erasure: {action}
"""


INVENTORY = (
    "\nversion: 1\ndatasets:\n"
    + chat_dataset(
        "chat_logs",
        bucket="jsonl_bucket",
        prefix="logs/",
        fmt="jsonl",
        described="Console logs as JSON Lines",
        action="delete",
    )
    + chat_dataset(
        "chat_sheets",
        bucket="csv_bucket",
        prefix="sheets/",
        fmt="csv",
        described="Console logs as CSV",
        action="anonymize",
    )
)


def versioned_buckets(
    names: dict[str, str], inventory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Versioned buckets, and an inventory (a template of their names) that this process loads."""
    from lethe.aws import client
    from lethe.data import s3store
    from lethe.inventory import cached_inventory
    from lethe.settings import get_settings

    s3 = client("s3")
    for name in names.values():
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    path = tmp_path / "inventory.yaml"
    path.write_text(inventory.format(**names))
    monkeypatch.setenv("LETHE_INVENTORY", str(path))
    get_settings.cache_clear()
    cached_inventory.cache_clear()
    s3store._versioned.clear()
    yield names
    s3store._versioned.clear()


@pytest.fixture
def buckets(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Two versioned buckets and an inventory naming them (one JSON Lines dataset, one CSV)."""
    names = {"jsonl_bucket": f"logs-{uuid.uuid4().hex[:8]}", "csv_bucket": f"sheets-{uuid.uuid4().hex[:8]}"}
    yield from versioned_buckets(names, INVENTORY, tmp_path, monkeypatch)


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
    for bucket, key in (
        (jb, "logs/1.jsonl"),
        (jb, "logs/2.jsonl"),
        (jb, "logs/3.jsonl"),
        (cb, "sheets/1.csv"),
        (cb, "sheets/2.csv"),
    ):
        invoke(INDEXER, object_created(bucket, key))


def rows_of(bucket: str, who: str) -> int:
    return sum(body.decode().lower().count(who.lower()) for body in [*_current_bodies(bucket)])


def _current_bodies(bucket: str) -> list[bytes]:
    from lethe.aws import client

    s3 = client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return [current(bucket, key) for key in keys]

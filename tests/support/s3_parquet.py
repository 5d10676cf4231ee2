"""Helpers for the Parquet dataset tests: two versioned buckets named by an inventory of their own
(one Parquet dataset erased by delete, one by anonymize), and objects written and read with pyarrow.

Import `parquet_buckets` into a test module to use it as a fixture."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.s3_datasets import RECENT, chat_dataset, versioned_buckets

INVENTORY = (
    "\nversion: 1\ndatasets:\n"
    + chat_dataset(
        "chat_tables",
        bucket="deleted_bucket",
        prefix="tables/",
        fmt="parquet",
        described="Console logs as Parquet",
        action="delete",
    )
    + chat_dataset(
        "chat_masked",
        bucket="masked_bucket",
        prefix="masked/",
        fmt="parquet",
        described="Console logs as Parquet, masked on erasure",
        action="anonymize",
    )
)


@pytest.fixture
def parquet_buckets(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    names = {"deleted_bucket": f"tables-{uuid.uuid4().hex[:8]}", "masked_bucket": f"masked-{uuid.uuid4().hex[:8]}"}
    yield from versioned_buckets(names, INVENTORY, tmp_path, monkeypatch)


def row(email: str, chat: str, when: str = RECENT, attempts: int = 1) -> dict[str, Any]:
    return {"reporter_email": email, "console_log": chat, "submitted_at": when, "attempts": attempts}


def schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("reporter_email", pa.string()),
            ("console_log", pa.string()),
            ("submitted_at", pa.string()),
            ("attempts", pa.int32()),
        ],
        metadata={b"written_by": b"the support desk"},
    )


def parquet_bytes(rows: list[dict[str, Any]], row_group_size: int | None = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema()), out, row_group_size=row_group_size)
    return out.getvalue()


def put_parquet(bucket: str, key: str, rows: list[dict[str, Any]] | bytes) -> None:
    from lethe.aws import client

    body = rows if isinstance(rows, bytes) else parquet_bytes(rows)
    client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def table_of(body: bytes) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(body))


def rows_in(body: bytes) -> list[dict[str, Any]]:
    return table_of(body).to_pylist()  # type: ignore[no-any-return]


def versions(bucket: str) -> list[tuple[str, bytes]]:
    from lethe.aws import client

    s3 = client("s3")
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            got = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
            found.append((version["Key"], got["Body"].read()))
    return found

"""`python -m lethe_local.s3_demo`: what the running local stack's demo feedback-log bucket holds,
every version of every object, as rows per subject (a demo and a check, never part of Lethe).

Reads `.local/stack.json` for moto's port, so it reaches the stack on whatever port it runs."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import boto3

from lethe_local.stack_file import STACK_FILE, _read, find_local_file

BUCKET = "lethe-feedbacklogbucket"
PREFIX = "console-logs/"


def census(s3: Any, bucket: str = BUCKET, prefix: str = PREFIX) -> list[tuple[str, str, bool, Counter[str]]]:
    """(key, version id, is latest, rows per reporter) of every object version under the prefix."""
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            rows: Counter[str] = Counter()
            for line in body.splitlines():
                try:
                    rows[str(json.loads(line).get("reporter_email"))] += 1
                except (ValueError, AttributeError):
                    rows["(unparseable)"] += 1
            found.append((version["Key"], version["VersionId"], bool(version["IsLatest"]), rows))
    return found


def main() -> int:
    path = find_local_file(STACK_FILE)
    record = _read(path) if path is not None else None
    if not record:
        print("no running local stack found (start it with `make run`)", file=sys.stderr)
        return 1
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{record['aws_port']}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto accepts any
    )
    totals: Counter[str] = Counter()
    for key, version_id, latest, rows in census(s3):
        state = "current" if latest else "noncurrent"
        print(f"{key}  {version_id[:12]}  {state:<10}  " + ", ".join(f"{who}: {n}" for who, n in sorted(rows.items())))
        totals.update(rows)
    print("\nrows in any version: " + ", ".join(f"{who}: {n}" for who, n in sorted(totals.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

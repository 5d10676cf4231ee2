"""S3 datasets: what an erasure costs, and how fast and lean a rewrite is.

1. Requests of one subject's erasure (the subject in k objects) with the prefix holding N and then
   10N objects, against the Find-and-Forget model of an erasure job (it reads every object under the
   prefix: a listing and a GET per object). Lethe's count must not move (ratio 1.00).
2. Rewrite throughput (MB/s) of Lethe's streamed, conditional rewrite of one JSON Lines object
   against a plain boto3 download-filter-upload of the same object, side by side, on one moto server.
3. Peak RSS growth of each, in a fresh process (moto runs in this one, so its storage is not
   counted): Lethe's must stay flat (<= 50 MB) whatever the object's size.

Sizes: LETHE_BENCH_S3_N objects (default 40), LETHE_BENCH_S3_MB per rewritten object (default 64;
a 200 MB object runs with LETHE_BENCH_S3_MB=200).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.s3_datasets import NOW, buckets, jsonl_row, put_jsonl

__all__ = ["buckets"]
REPO = Path(__file__).resolve().parents[2]
N = int(os.environ.get("LETHE_BENCH_S3_N", "40"))
SIZE_MB = int(os.environ.get("LETHE_BENCH_S3_MB", "64"))
K = 3
MB = 1024 * 1024


class _Counter:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _find_and_forget_model(s3: Any, bucket: str, prefix: str, email: str) -> int:
    """The Find-and-Forget query model, written independently: list the prefix, read every object,
    look for the subject's rows. Returns how many rows it found."""
    found = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for listed in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
            found += sum(1 for line in body.splitlines() if email.encode() in line)
    return found


def _fill(bucket: str, start: int, count: int) -> None:
    for n in range(start, start + count):
        put_jsonl(bucket, f"logs/filler-{n:05d}.jsonl", [jsonl_row(f"user{n}@example.net", f"hello {n}")])


def _subject_objects(bucket: str, email: str, tag: str) -> None:
    from lethe.aws import client
    from lethe.data import s3store
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring

    dataset = get_inventory().dataset("chat_logs")
    for n in range(K):
        key = f"logs/{tag}-{n}.jsonl"
        put_jsonl(bucket, key, [jsonl_row(email, f"secret {n}"), jsonl_row(f"other{n}@example.net", "x")])
        s3store.index_object(dataset, key, key_ring())
    assert client("s3").list_objects_v2(Bucket=bucket, Prefix=f"logs/{tag}-")["KeyCount"] == K


def _lethe_erasure_requests(email: str) -> tuple[int, dict[str, int]]:
    from lethe.aws import client
    from lethe.data import s3store
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring

    s3store._versioned.clear()  # each run pays its versioning check, as a cold worker does
    counter = _Counter()
    s3 = client("s3")
    s3.meta.events.register("before-call.s3", counter)
    try:
        done = s3store.erase_subject(get_inventory().dataset("chat_logs"), [email], key_ring(), mask=None, now=NOW)
    finally:
        s3.meta.events.unregister("before-call.s3", counter)
    assert (done.deleted, done.objects_rewritten) == (K, K)
    return counter.total, dict(sorted(counter.calls.items()))


def _model_requests(bucket: str, email: str) -> int:
    s3 = boto3.client("s3", region_name="us-east-1")
    counter = _Counter()
    s3.meta.events.register("before-call.s3", counter)
    assert _find_and_forget_model(s3, bucket, "logs/", email) == K
    return counter.total


def test_s3_erasure_requests(buckets: dict[str, str], bench_report: Any) -> None:
    bucket = buckets["jsonl_bucket"]
    # Given a prefix of N objects, one subject in K of them
    _fill(bucket, 0, N - K)
    first = f"first.{uuid.uuid4().hex[:6]}@example.org"
    _subject_objects(bucket, first, "first")
    model_n = _model_requests(bucket, first)
    lethe_n, calls_n = _lethe_erasure_requests(first)
    # and then 10N objects, another subject in K of them
    _fill(bucket, N, 9 * N)
    second = f"second.{uuid.uuid4().hex[:6]}@example.org"
    _subject_objects(bucket, second, "second")
    model_10n = _model_requests(bucket, second)
    lethe_10n, calls_10n = _lethe_erasure_requests(second)
    # Then Lethe's requests do not follow the prefix; the read-everything model's do
    assert calls_10n == calls_n
    bench_report.row(
        f"Lethe S3 requests, prefix {10 * N} vs {N} objects (k={K})",
        lethe_10n,
        lethe_n,
        target="== 1.00",
        unit="requests",
        calls=calls_10n,
    )
    bench_report.row(
        f"Find-and-Forget model requests, prefix {10 * N} vs {N}", model_10n, model_n, target="~10 (reads all)"
    )
    bench_report.row(
        f"Lethe vs Find-and-Forget model at {10 * N} objects", lethe_10n, model_10n, target="<< 1", unit="requests"
    )


# ------------------------------------------------------------------ rewrite throughput and memory

REWRITE = textwrap.dedent("""
    import json, sys, time
    import boto3

    mode, bucket, key, email = sys.argv[1:5]

    def peak_kb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    if mode == "lethe":
        from lethe.data import s3store
        from lethe.inventory import parse_inventory
        from lethe.data.s3store import matcher
        inventory = parse_inventory(sys.argv[5])
        dataset = inventory.dataset("chat_logs")
        holds = matcher(dataset, [email])
        from lethe.aws import client
        client("s3").head_bucket(Bucket=bucket)  # the client and its service model, as the baseline's below
        before = peak_kb()
        started = time.perf_counter()
        result = s3store.rewrite(dataset, key, lambda record: holds(record))
        elapsed = time.perf_counter() - started
        dropped = result.dropped
    else:
        s3 = boto3.client("s3")
        s3.head_bucket(Bucket=bucket)
        before = peak_kb()
        started = time.perf_counter()
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        kept = [line for line in body.splitlines(keepends=True)
                if json.loads(line).get("reporter_email") != email]
        dropped = body.count(b"\\n") - len(kept)
        s3.put_object(Bucket=bucket, Key=key, Body=b"".join(kept))
        elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "before_kb": before, "after_kb": peak_kb(), "dropped": dropped}))
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _big_object(s3: Any, bucket: str, key: str, email: str) -> int:
    """SIZE_MB of JSON Lines, one row in 1000 the subject's, uploaded in parts."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts, chunk, number, size, n = [], bytearray(), 1, 0, 0
    while size + len(chunk) < SIZE_MB * MB:
        who = email if n % 1000 == 0 else f"user{n % 97}@example.net"
        chunk += (json.dumps({"reporter_email": who, "console_log": f"message {n} " + "x" * 180}) + "\n").encode()
        n += 1
        if len(chunk) >= 8 * MB:
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=bytes(chunk))["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})
            size, number, chunk = size + len(chunk), number + 1, bytearray()
    if chunk:
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=bytes(chunk))["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
        size += len(chunk)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    return size


def _run(mode: str, endpoint: str, bucket: str, key: str, email: str, inventory: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "LETHE_DATASET_BUCKETS": "{}",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "layers/lethe"), str(REPO / "local")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", REWRITE, mode, bucket, key, email, inventory],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_s3_rewrite_throughput_and_memory(moto_server: str, bench_report: Any) -> None:
    from tests.support.s3_datasets import INVENTORY

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    inventory = INVENTORY.format(jsonl_bucket=bucket, csv_bucket=bucket)
    email = f"bench.{uuid.uuid4().hex[:6]}@example.org"
    size = _big_object(s3, bucket, "logs/lethe.jsonl", email)
    _big_object(s3, bucket, "logs/plain.jsonl", email)
    lethe = _run("lethe", moto_server, bucket, "logs/lethe.jsonl", email, inventory)
    plain = _run("plain", moto_server, bucket, "logs/plain.jsonl", email, inventory)
    # Both dropped the same rows, and the subject is gone from both
    assert lethe["dropped"] == plain["dropped"] > 0
    for key in ("logs/lethe.jsonl", "logs/plain.jsonl"):
        assert email.encode() not in s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    mb = size / MB
    lethe_rate, plain_rate = mb / lethe["seconds"], mb / plain["seconds"]
    bench_report.row(
        f"rewrite throughput of a {mb:.0f} MB object, Lethe vs download-filter-upload",
        lethe_rate,
        plain_rate,
        target=">= 0.8",
        unit="MB/s",
    )
    lethe_growth = (lethe["after_kb"] - lethe["before_kb"]) / 1024
    plain_growth = (plain["after_kb"] - plain["before_kb"]) / 1024
    bench_report.row(f"Lethe rewrite peak RSS growth ({mb:.0f} MB object) vs 50 MB", lethe_growth, 50, target="<= 1.0")
    bench_report.row(
        "download-filter-upload peak RSS growth (for comparison) vs 50 MB", plain_growth, 50, target="grows with size"
    )

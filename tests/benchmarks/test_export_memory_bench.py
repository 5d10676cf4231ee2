"""Access export: peak RSS growth of the worker for a subject with 100,000 items. The export is
streamed (items page by page into multipart parts, then the parts line by line into export.json and
export.html), so memory must not follow the number of items.

moto runs as a server in this process; the access tasks and the finalize run in a fresh subprocess
pointed at it (AWS_ENDPOINT_URL), so the moto's own storage of the items and of the export is not
counted. Measured: the subprocess's peak RSS (VmHWM of /proc/self/status; getrusage's ru_maxrss
would carry the forking parent's peak over exec) after the export, minus the same just before it
(after imports, the request and one warm-up export of a small subject)."""

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

REPO = Path(__file__).resolve().parents[2]
ITEMS = 100_000
MB = 1024 * 1024

WORKER = textwrap.dedent("""
    import json, sys
    from lethe.data.models import bind_models
    from lethe.domain import RequestType
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request
    from lethe.settings import get_settings
    from tests.support.fulfilment import new_request

    bind_models(get_settings())

    def export(email):
        request_id = new_request(RequestType.access, email)
        fulfilment.start(request_id)
        for name in sorted(get_settings_inventory()):
            fulfilment.run_task(request_id, name)
        return request_id

    def get_settings_inventory():
        from lethe.inventory import get_inventory
        return get_inventory().datasets

    def peak_kb():
        # VmHWM: this process image's peak RSS (getrusage's ru_maxrss would carry the parent's over exec)
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    export(sys.argv[2])  # warm-up: a subject with a handful of items
    before = peak_kb()
    request_id = export(sys.argv[1])
    after = peak_kb()
    request = get_request(request_id)
    print(json.dumps({"request_id": request_id, "status": request.status.value,
                      "before_kb": before, "after_kb": after}))
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    import logging

    from moto.server import ThreadedMotoServer

    from tests.conftest import reset_process_caches

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    reset_process_caches()
    try:
        from lethe_local.resources import create_stack

        stack = create_stack()
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        reset_process_caches()
        yield {**os.environ}
    finally:
        server.stop()
        reset_process_caches()


def _write_items(table: str, email: str, count: int) -> None:
    ddb = boto3.resource("dynamodb")
    with ddb.Table(table).batch_writer() as batch:
        for n in range(count):
            batch.put_item(
                Item={
                    "feedback_id": f"fb-{n:06d}-{uuid.uuid4().hex[:8]}",
                    "reporter_email": email,
                    "browser": "Firefox 131",
                    "ip_address": "198.51.100.23",
                    "console_log": f"line {n}: connection ok",
                }
            )


def test_access_export_memory(moto_server: dict[str, str], bench_report: Any) -> None:
    from lethe.settings import get_settings

    settings = get_settings()
    table = settings.table_name("FeedbackTable")
    # Given a subject with 100,000 feedback items, and another with five (for the warm-up)
    email = f"export-bench.{uuid.uuid4().hex[:8]}@example.org"
    warm = f"export-warm.{uuid.uuid4().hex[:8]}@example.org"
    _write_items(table, email, ITEMS)
    _write_items(table, warm, 5)
    # When a fresh process runs the subject's access tasks and the finalize
    env = {**moto_server, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "layers/lethe"), str(REPO / "local")])}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, email, warm], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Then the request is completed and export.json holds every item
    assert result["status"] == "completed"
    body = boto3.client("s3").get_object(
        Bucket=settings.export_bucket, Key=f"exports/{result['request_id']}/export.json"
    )["Body"]
    export = json.load(body)
    assert len(export["datasets"]["feedback"]["items"]) == ITEMS
    assert {item["reporter_email"] for item in export["datasets"]["feedback"]["items"]} == {email}

    growth_mb = (result["after_kb"] - result["before_kb"]) * 1024 / MB  # VmHWM is in KiB
    bench_report.row(
        "export peak RSS growth (100,000 items) vs 50 MB",
        growth_mb,
        50,
        target="<= 1.0 (<= 50 MB)",
        unit="MB",
        items=ITEMS,
        rss_before_mb=round(result["before_kb"] / 1024, 1),
        rss_after_mb=round(result["after_kb"] / 1024, 1),
        measure="VmHWM of a fresh worker process, after minus before the export",
    )
    print(
        f"\nexport of {ITEMS} items: peak RSS {result['before_kb'] / 1024:.1f} MB -> {result['after_kb'] / 1024:.1f} MB"
    )

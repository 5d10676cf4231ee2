"""A full run of Lethe on the local stack, with every function's raw log output captured: no email,
IP address or name of a demo subject appears in any log line or metric.

The stack prints each email it sends (that is its outbox, standing in for SES) and is not a log of
Lethe's; the JSON lines the functions write (Powertools logs and EMF metrics) are what CloudWatch
would receive, and those are checked.
"""

from __future__ import annotations

import email
import json
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from lethe_local.seed import DEMO_SUBJECTS, demo_items
from tests.e2e.conftest import free_port, run_stack, stack_environment, wait_until_ready

REPO = Path(__file__).resolve().parents[2]
CODE = re.compile(r"code is (\d{6})")


class Stack:
    def __init__(self, base_url: str, token: str, outbox: Path, log: Path) -> None:
        self.base_url, self.token, self.outbox, self.log = base_url, token, outbox, log

    def call(self, method: str, path: str, *, admin: bool = False, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if admin:
            headers["Authorization"] = f"Bearer {self.token}"
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=120, **kwargs)

    def invoke(self, logical_id: str, event: str) -> None:
        answer = self.call("POST", f"/_local/invoke/{logical_id}", data=(REPO / "events" / event).read_bytes())
        assert answer.status_code == 200, answer.text

    def code_for(self, request_id: str) -> str:
        for path in sorted(self.outbox.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes())
            text = "".join(
                str(part.get_payload(decode=True).decode())
                for part in message.walk()
                if part.get_content_type() == "text/plain"
            )
            if request_id in text and (match := CODE.search(text)):
                return match.group(1)
        raise AssertionError(f"no code was emailed for {request_id}")

    def file_and_verify(self, kind: str, address: str, **extra: Any) -> str:
        answer = self.call("POST", "/requests", json={"type": kind, "email": address, "regulation": "gdpr", **extra})
        assert answer.status_code == 202, answer.text
        request_id = answer.json()["request_id"]
        verified = self.call("POST", f"/requests/{request_id}/verify", json={"code": self.code_for(request_id)})
        assert verified.status_code == 200, verified.text
        return str(request_id)

    def wait_for(self, request_id: str, statuses: set[str]) -> str:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = self.call("GET", f"/requests/{request_id}").json()["status"]
            if status in statuses:
                return str(status)
            time.sleep(0.5)
        raise AssertionError(f"{request_id} did not reach {statuses}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    local_dir = tmp_path_factory.mktemp("lethe-pii")
    port, aws_port = free_port(), free_port()
    token = secrets.token_urlsafe(16)
    log = local_dir / "stack.log"
    process = run_stack(
        stack_environment(port, aws_port, local_dir, LETHE_ADMIN_TOKEN=token, LETHE_LOCAL_RAW_LOGS="1"), log
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, base_url, log)
        yield Stack(base_url, token, local_dir / "outbox", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _function_output(log: Path) -> list[str]:
    """The JSON lines the functions wrote: Powertools logs and EMF metrics."""
    lines = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and ("level" in record or "_aws" in record):
            lines.append(line[start:])
    return lines


def _personal_data() -> set[str]:
    """Every address, name, IP address and account id of the demo subjects, as seeded."""
    found: set[str] = set()
    for subject in DEMO_SUBJECTS:
        found |= {subject.email, subject.name, *subject.name.split()}
    for _, item in demo_items(datetime(2026, 11, 22)):
        for key, value in item.items():
            linked = key in ("account_id", "host_account_id")  # an identity reached through links
            if isinstance(value, str) and (key.endswith(("ip", "ip_address")) or "@" in value or linked):
                found.add(value)
    return {value for value in found if len(value) > 3}


def test_no_personal_data_in_any_log_line_or_metric(stack: Stack) -> None:
    # Given the local stack with demo data, when every kind of work runs once:
    access = stack.file_and_verify("access", "ada@example.com", name="Ada Lovelace")
    erasure = stack.file_and_verify("erasure", "grace@example.com", name="Grace Hopper")
    stack.file_and_verify("marketing_opt_out", "linus@example.com")
    rectification = stack.file_and_verify(
        "rectification", "alan@example.com", corrections={"name": "Alan M. Turing"}, details="my name is misspelt"
    )
    assert stack.call("POST", f"/admin/requests/{rectification}/approve", admin=True).status_code == 200
    held = stack.call(
        "POST", "/admin/legal-holds", admin=True, json={"email": "linus@example.com", "reason": "litigation hold"}
    )
    assert held.status_code in (200, 201), held.text
    consent = stack.call(
        "POST",
        "/consents",
        headers={"User-Agent": "Mozilla/5.0 Firefox/130.0"},
        json={
            "purposes": {"strictly_necessary": True, "marketing_email": True},
            "policy_version": "2026-11",
            "source": "banner",
            "email": "linus@example.com",
        },
    )
    assert consent.status_code in (200, 201), consent.text
    link = stack.call("POST", "/admin/unsubscribe-links", admin=True, json={"email": "ada@example.com"}).json()
    token = link["url"].split("token=", 1)[1]
    assert stack.call("POST", "/unsubscribe", params={"token": token}).status_code == 200
    assert (
        stack.call("GET", "/admin/suppressions", admin=True, params={"email": "ada@example.com"}).json()["suppressed"]
        is True
    )
    # The sweep as of mid-2027 first: the first sweep of an index dataset reads it by Scan, so it reaches
    # everything due by then at once; the sweep as of the sample's day after it reads eight days of expiry
    # buckets per shard. (The other way round, the second sweep Queries 191 days of buckets per shard,
    # some 2,700 Queries that moto answers by reading the whole table each time.)
    for logical_id, event in (
        ("RetentionFunction", "retention_future.json"),
        ("RetentionFunction", "retention.json"),
        ("VaultPurgeFunction", "vault_purge.json"),
        ("DeadlineFunction", "deadline.json"),
    ):
        stack.invoke(logical_id, event)
    assert stack.wait_for(access, {"completed"}) == "completed"
    assert stack.wait_for(erasure, {"completed"}) == "completed"

    # Then the functions did log, and emitted metrics...
    output = _function_output(stack.log)
    assert any('"level"' in line for line in output), "expected JSON log lines from the functions"
    assert any('"_aws"' in line for line in output), "expected EMF metric lines from the functions"
    # ...and none of those lines holds a demo subject's address, name or IP, nor the caller's IP.
    secrets_seen = {value: line for line in output for value in (*_personal_data(), "127.0.0.1") if value in line}
    assert not secrets_seen, f"personal data in function output: {sorted(secrets_seen)}"

"""The local stack as a running process: `local_stack` starts `python -m lethe_local` once per session
on free ports, with its files in a temporary directory, and stops it with SIGTERM at the end.
`staged_stack` is a second one served under the stage prefix /prod/ (as an execute-api URL), with its
files in a `.local` folder and a generated admin token, as `make run` leaves them."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalStack:
    base_url: str
    admin_token: str
    outbox: Path
    aws_endpoint: str
    port: int
    aws_port: int
    process: subprocess.Popen[str]
    log: Path
    smtp_port: int = 0  # the privacy inbox (LETHE_SMTP_PORT)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's AWS (moto), as a test reaches past Lethe into it."""
        import boto3

        return boto3.client(service, **self._aws())

    def table(self, name: str) -> Any:
        """A boto3 DynamoDB Table of the stack's AWS."""
        import boto3

        return boto3.resource("dynamodb", **self._aws()).Table(name)

    def _aws(self) -> dict[str, str]:
        return {
            "endpoint_url": self.aws_endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }


def stack_environment(port: int, aws_port: int, local_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LETHE_"))}
    env.update(PORT=str(port), LETHE_AWS_PORT=str(aws_port), LETHE_LOCAL_DIR=str(local_dir), PYTHONUNBUFFERED="1")
    env["LETHE_SMTP_PORT"] = str(free_port())  # never the default 2525: stacks run side by side
    env.update(extra)
    return env


def run_stack(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w", encoding="utf-8") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lethe_local"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )


def wait_until_ready(process: subprocess.Popen[str], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{base_url}/discovery", timeout=2).status_code < 500:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or its first (cold) answer is slow: the deadline above decides
        time.sleep(0.3)
    process.kill()
    pytest.fail(f"the local stack did not answer within {START_TIMEOUT_SECONDS} s:\n{log.read_text()}")


@contextmanager
def serving(local_dir: Path, *, token: str | None, stage: str | None = None, **settings: str) -> Iterator[LocalStack]:
    """A stack with its files in local_dir; without a token it generates one into local_dir/admin-token."""
    port, aws_port = free_port(), free_port()
    log = local_dir.parent / f"{local_dir.name}-stack.log"
    extra = {"LETHE_ADMIN_TOKEN": token} if token else {}
    extra.update(settings)
    if stage:
        extra["LETHE_STAGE"] = stage
    env = stack_environment(port, aws_port, local_dir, **extra)
    process = run_stack(env, log)
    base_url = f"http://127.0.0.1:{port}" + (f"/{stage}" if stage else "")
    try:
        wait_until_ready(process, base_url, log)
        yield LocalStack(
            base_url=base_url,
            admin_token=token or (local_dir / "admin-token").read_text().strip(),
            outbox=local_dir / "outbox",
            aws_endpoint=f"http://127.0.0.1:{aws_port}",
            port=port,
            aws_port=aws_port,
            process=process,
            log=log,
            smtp_port=int(env["LETHE_SMTP_PORT"]),
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, f"the local stack exited with {process.returncode}:\n{log.read_text()}"


@contextmanager
def started_stack(local_dir: Path) -> Iterator[LocalStack]:
    """A local stack of its own on free ports, its files under `local_dir`, stopped on exit."""
    with serving(local_dir, token=secrets.token_urlsafe(16)) as stack:
        yield stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # Every test of the session submits from 127.0.0.1: the per-source limit is tested in integration.
    with serving(
        tmp_path_factory.mktemp("lethe-local"),
        token=secrets.token_urlsafe(16),
        LETHE_SUBMISSIONS_PER_IP_PER_HOUR="100000",
    ) as stack:
        yield stack


@pytest.fixture(scope="session")
def staged_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with serving(tmp_path_factory.mktemp("lethe-staged") / ".local", token=None, stage="prod") as stack:
        yield stack

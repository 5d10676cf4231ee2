"""On the local stack, as a newcomer would: an item a service writes without expiry attributes, past
its retention, is swept by the next run; after an erasure, a copy of the table as it was before (a
restore) run through `lethe backups replay` loses that subject's items again and nobody else's; and
writing an item for the erased subject shows in the audit and the operator's digest."""

from __future__ import annotations

import email as email_lib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import pytest
import requests

from tests.e2e.conftest import REPO, LocalStack, started_stack
from tests.e2e.test_cli import _code_for, lethe_json


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack of its own: a sweep dated ahead elsewhere would move the watermark these checks stand on,
    and the shared stack's submissions would reach the per-source limit."""
    with started_stack(tmp_path_factory.mktemp("lethe-retention-backups")) as stack:
        yield stack


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def _session(stack: LocalStack, subject: str, started: datetime) -> str:
    session_id = f"gs-e2e-{uuid.uuid4().hex[:10]}"
    stack.client("dynamodb").put_item(
        TableName="GuestSessionsTable",
        Item={
            "session_id": {"S": session_id},
            "guest_email": {"S": subject},
            "customer_id": {"S": "acme-corp"},
            "started_at": {"S": started.isoformat()},
        },
    )
    return session_id


def _get(stack: LocalStack, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    return stack.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")  # type: ignore[no-any-return]


def _erase(stack: LocalStack, subject: str) -> str:
    created = requests.post(
        f"{stack.base_url}/requests", json={"type": "erasure", "email": subject, "regulation": "gdpr"}, timeout=30
    )
    assert created.status_code == 202, created.text
    request_id = str(created.json()["request_id"])
    code = _code_for(stack.outbox, request_id)
    verified = requests.post(f"{stack.base_url}/requests/{request_id}/verify", json={"code": code}, timeout=60)
    assert verified.status_code < 300, verified.text

    def completed() -> bool:
        status = requests.get(f"{stack.base_url}/requests/{request_id}", timeout=10).json()["status"]
        return bool(status == "completed")

    assert _until(completed, 60), "the erasure did not complete"
    return request_id


def test_an_item_written_without_expiry_attributes_is_swept_by_the_next_run(local_stack: LocalStack) -> None:
    # Given a first sweep (the backfill), after which sweeps go by the index
    now = datetime.now(UTC)
    first = lethe_json(local_stack, "retention", "run", "--wait")
    assert first["due_after"] == 0
    # When a service writes a guest session 60 days old (retention 30 days) without expiry attributes
    session_id = _session(local_stack, f"late-{uuid.uuid4().hex[:8]}@example.org", now - timedelta(days=60))
    key = {"session_id": {"S": session_id}}

    # Then the stream files it, and the next run (tomorrow's) deletes it
    assert _until(lambda: "expiry_bucket" in (_get(local_stack, "GuestSessionsTable", key) or {}))
    at = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lethe_json(local_stack, "retention", "run", "--wait", "--at", at)
    assert _get(local_stack, "GuestSessionsTable", key) is None
    # And the report says the guest sessions' stream is wired
    report = lethe_json(local_stack, "retention", "report")
    assert report["datasets"]["guest_sessions"]["stream_wired"] is True


def test_a_restored_copy_loses_the_erased_subject_again_and_a_re_creation_is_flagged(
    local_stack: LocalStack,
) -> None:
    ddb = local_stack.client("dynamodb")
    now = datetime.now(UTC)
    subject, bystander = f"gone-{uuid.uuid4().hex[:8]}@example.org", f"stays-{uuid.uuid4().hex[:8]}@example.org"
    erased_id = _session(local_stack, subject, now - timedelta(days=1))
    kept_id = _session(local_stack, bystander, now - timedelta(days=1))
    # Given a copy of the guest sessions as they were before the erasure (what a restore gives back)
    restored = f"GuestSessionsRestored{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=restored,
        KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for session_id in (erased_id, kept_id):
        ddb.put_item(
            TableName=restored, Item=_get(local_stack, "GuestSessionsTable", {"session_id": {"S": session_id}})
        )
    # And the subject's erasure, through the public form's API
    _erase(local_stack, subject)

    # When the operator replays the erasures onto the copy
    job = lethe_json(local_stack, "backups", "replay", "--dataset", "guest_sessions", "--table", restored)

    # Then the subject's session is gone from it again, and the bystander's stays
    assert job["status"] == "done" and job["counts"]["matched_by_key"] == 1 and job["counts"]["deleted"] == 1
    assert _get(local_stack, restored, {"session_id": {"S": erased_id}}) is None
    assert _get(local_stack, restored, {"session_id": {"S": kept_id}}) is not None
    # And a table of another shape is refused with one clear line
    from tests.e2e.test_cli import lethe

    refused = lethe(local_stack, "backups", "replay", "--dataset", "guest_sessions", "--table", "AccountsTable")
    assert refused.exit_code == 1 and "keyed by account_id" in refused.stderr

    # When the service writes a session for the erased subject again
    again = _session(local_stack, subject, now)

    # Then it is kept, and the operator's daily digest names the re-creation
    def digest_names_it() -> bool:
        event = json.loads((REPO / "events" / "deadline.json").read_text())
        event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        requests.post(f"{local_stack.base_url}/_local/invoke/DeadlineFunction", json=event, timeout=60)
        for path in sorted(local_stack.outbox.glob("*.eml")):
            message = email_lib.message_from_bytes(path.read_bytes(), policy=policy.default)
            body = message.get_body(preferencelist=("plain",))
            if body is not None and "written again" in body.get_content():
                return True
        return False

    assert _until(digest_names_it, 30)
    assert _get(local_stack, "GuestSessionsTable", {"session_id": {"S": again}}) is not None
    # And the function's log line names the dataset, never the subject (emails are printed by the outbox)
    flagged = [line for line in local_stack.output().splitlines() if "written again" in line and "WARNING" in line]
    assert flagged and all(subject not in line for line in flagged)

"""Replay after a restore: a copy of the demo tables as they were before an erasure (what a PITR
restore gives back) is run through the replay, and loses that subject's items again and nobody
else's; expired items of the copy are swept; a second run, or a run after one killed half-way,
handles nothing twice; a table of another shape is refused before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from lethe.domain import RequestType, Status
from tests.integration.test_erasure import seed_subject
from tests.support.fulfilment import drain, new_request, put_items, unique_email

Invoke = Callable[..., Any]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEMO = {
    "accounts": "AccountsTable",
    "guest_sessions": "GuestSessionsTable",
    "diagnostics": "DiagnosticsTable",
    "feedback": "FeedbackTable",
    "marketing_contacts": "MarketingContactsTable",
    "invoices": "InvoicesTable",
}


def _ddb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def restore_copy(source: str, target: str) -> None:
    """What a restore gives: a new table with the source's keys and indexes, holding its items as they were."""
    described = _ddb().describe_table(TableName=source)["Table"]
    kwargs: dict[str, Any] = {}
    if described.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in described["GlobalSecondaryIndexes"]
        ]
    _ddb().create_table(
        TableName=target,
        KeySchema=described["KeySchema"],
        AttributeDefinitions=described["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
        **kwargs,
    )
    for item in _ddb().scan(TableName=source, ConsistentRead=True)["Items"]:
        _ddb().put_item(TableName=target, Item=item)


def items(table: str) -> list[dict[str, Any]]:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(table).scan(ConsistentRead=True)["Items"]  # type: ignore[no-any-return]


def holds(table: str, value: str) -> bool:
    return value in json.dumps(items(table), default=str)


@pytest.fixture
def restored(invoke: Invoke) -> dict[str, Any]:
    """A subject and a bystander in every demo table; a backup of every table taken; then the erasure."""
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    email, other = unique_email("gone"), unique_email("stays")
    seed_subject(email, "r1")
    seed_subject(other, "r2")
    # An item of the bystander's already past its retention when the backup is replayed
    put_items(
        "GuestSessionsTable",
        [{"session_id": "gs-r2-old", "guest_email": other, "customer_id": "acme-corp", "started_at": "2026-09-01"}],
    )
    for table in DEMO.values():
        restore_copy(table, f"{table}Restored")
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    assert get_request(request_id).status is Status.completed
    return {"email": email, "other": other}


def test_a_restored_copy_loses_the_erased_subject_again_and_nobody_else(restored: dict[str, Any]) -> None:
    from lethe.logic import replay

    email, other = restored["email"], restored["other"]
    # Given the restored copies still hold the erased subject
    assert all(holds(f"{t}Restored", email) for t in DEMO.values())

    # When each is replayed
    results = {d: replay.run(d, f"{t}Restored", now=NOW)[0] for d, t in DEMO.items()}

    # Then no copy holds the subject any more (the account is anonymized in place, as the erasure did)
    assert not any(holds(f"{t}Restored", email) for t in DEMO.values())
    account = next(i for i in items("AccountsTableRestored") if i["account_id"] == "acct-r1")
    # with random tokens: a replay's masking links to no one, the deployment's keys included
    assert account["name"] == "[redacted]" and account["email"].startswith("anon:")
    # And every ledger item was matched and handled once
    assert results["diagnostics"].matched_by_key == 3 and results["diagnostics"].deleted == 3
    assert results["accounts"].anonymized == 1
    assert results["invoices"].deleted == 1  # isolated in the vault already: only the copy goes
    assert results["guest_sessions"].deleted == 1 and results["guest_sessions"].conflicts == 0
    # And the bystander keeps everything within its retention; what expired is swept as of now
    assert all(holds(f"{t}Restored", other) for t in DEMO.values())
    sessions = {i["session_id"] for i in items("GuestSessionsTableRestored")}
    assert sessions == {"gs-r2"}
    assert results["guest_sessions"].retention.deleted == 1


def test_a_second_replay_changes_nothing(restored: dict[str, Any]) -> None:
    from lethe.logic import replay

    for dataset, table in DEMO.items():
        replay.run(dataset, f"{table}Restored", now=NOW)
    before = {t: items(f"{t}Restored") for t in DEMO.values()}

    again = {d: replay.run(d, f"{t}Restored", now=NOW)[0] for d, t in DEMO.items()}

    assert {t: items(f"{t}Restored") for t in DEMO.values()} == before
    for counts in again.values():
        assert counts.deleted == counts.anonymized == counts.isolated == counts.conflicts == 0
        assert counts.retention.deleted == counts.retention.anonymized == counts.retention.isolated == 0
    assert again["accounts"].already_done == 1


def test_a_replay_stopped_half_way_and_run_again_handles_each_ledger_item_once(restored: dict[str, Any]) -> None:
    from lethe.logic import replay

    # Given a replay of the diagnostics copy that stops after its first page of one item
    first, left = replay.run("diagnostics", "DiagnosticsTableRestored", now=NOW, out_of_time=lambda: True, page_size=1)
    assert left is not None and first.items_read == 1

    # When it is run again from the start
    second, done = replay.run("diagnostics", "DiagnosticsTableRestored", now=NOW)

    # Then the subject's three items were deleted once in all, and nothing conflicted
    assert done is None
    assert first.deleted + second.deleted == 3 and first.conflicts + second.conflicts == 0
    assert not holds("DiagnosticsTableRestored", restored["email"])


def test_a_table_of_another_shape_is_refused_before_anything_is_written(restored: dict[str, Any]) -> None:
    from lethe.errors import ReplayTableMismatch, RestoredTableNotFound, UnknownDataset
    from lethe.logic import replay

    before = items("AccountsTableRestored")
    with pytest.raises(ReplayTableMismatch, match="keyed by account_id"):
        replay.run("guest_sessions", "AccountsTableRestored", now=NOW)
    with pytest.raises(RestoredTableNotFound):
        replay.run("guest_sessions", "NoSuchRestoredTable", now=NOW)
    with pytest.raises(UnknownDataset):
        replay.run("no_such_dataset", "AccountsTableRestored", now=NOW)
    assert items("AccountsTableRestored") == before


@pytest.fixture
def operator(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.settings import get_settings
    from tests.support.fulfilment import ADMIN_TOKEN

    monkeypatch.setenv("LETHE_ADMIN_TOKEN", ADMIN_TOKEN)
    get_settings.cache_clear()


def run_replay_queue(invoke: Invoke, aws: Any) -> int:
    """Deliver the ReplayQueue to RestoreReplayFunction until it is empty, as Lambda would."""
    from lethe_local.events import sqs_event

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = aws.queue_urls["ReplayQueue"]
    delivered = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", []):
        assert invoke(
            "RestoreReplayFunction", sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:ReplayQueue")
        ) == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        delivered += 1
    return delivered


def test_the_admin_route_runs_a_replay_as_a_job_and_refuses_a_foreign_table(
    restored: dict[str, Any], operator: None, invoke: Invoke, aws: Any
) -> None:
    from tests.support.fulfilment import admin_call

    # When an operator names a table of another shape, Then a 422 in the error schema, and no job
    status, body = admin_call(
        invoke,
        "POST",
        "/admin/backups/replay",
        resource="/admin/backups/replay",
        body={"dataset": "guest_sessions", "table": "AccountsTableRestored"},
    )
    assert status == 422 and body["error"]["code"] == "table_mismatch"
    assert run_replay_queue(invoke, aws) == 0

    # When the right table is named, Then a job is queued and run by RestoreReplayFunction
    status, job = admin_call(
        invoke,
        "POST",
        "/admin/backups/replay",
        resource="/admin/backups/replay",
        body={"dataset": "guest_sessions", "table": "GuestSessionsTableRestored"},
    )
    assert status == 202 and job["status"] == "queued"
    assert run_replay_queue(invoke, aws) == 1
    status, done = admin_call(
        invoke,
        "GET",
        f"/admin/backups/replay/{job['job_id']}",
        resource="/admin/backups/replay/{job_id}",
        path_parameters={"job_id": job["job_id"]},
    )
    assert status == 200 and done["status"] == "done"
    assert done["counts"]["matched_by_key"] == 1 and done["counts"]["deleted"] == 1
    assert not holds("GuestSessionsTableRestored", restored["email"])
    # And the audit has the job and its task, without the subject
    from tests.support.fulfilment import audit_dump

    dump = audit_dump()
    assert "backups.replay_started" in dump and "backups.replay_task" in dump
    assert restored["email"] not in dump


def test_a_cloudtrail_restore_of_a_dataset_table_starts_the_replay(
    restored: dict[str, Any], invoke: Invoke, aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    # When EventBridge delivers the sample restore of GuestSessionsTable into GuestSessionsTableRestored
    started = invoke("RestoreReplayFunction", sample_event("restore_replay.json"))

    # Then a job runs on the restored table
    assert started["job"]["dataset"] == "guest_sessions" and started["job"]["source"].startswith("cloudtrail:")
    assert run_replay_queue(invoke, aws) == 1
    assert not holds("GuestSessionsTableRestored", restored["email"])
    # And a restore of a table no dataset uses starts nothing
    other = sample_event("restore_replay.json")
    other["detail"]["requestParameters"]["sourceTableName"] = "SomeoneElsesTable"
    assert invoke("RestoreReplayFunction", other) == {"job": None}

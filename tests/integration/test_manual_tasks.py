"""Manual datasets (store: manual), through the real worker, admin API and deadline watcher on moto:
the demo map's recordings in Azure storage are reached through margaret's recorded meeting, so her
requests wait for the storage team's task."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.fulfilment import admin_call, drain, new_request, sent_mail, use_admin_token

Invoke = Callable[..., Any]
MARGARET = "margaret@example.com"
OWNER = "storage-team@example.com"
TASK = "azure_recordings@3"  # email -> account id (round 2) -> the recorded meeting (round 3)
COMPLETE = "/admin/requests/{id}/tasks/{dataset}/complete"


@pytest.fixture
def demo(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe_local.seed import seed_demo_data

    monkeypatch.setenv("LETHE_ERASURE_VERIFY_DELAY_SECONDS", "0")
    use_admin_token(monkeypatch)
    seed_demo_data(now=datetime.now(UTC))


def mails_to(address: str) -> list[tuple[str, str]]:
    found = []
    for raw in sent_mail():
        message = message_from_bytes(raw.raw_data.encode("utf-8", "surrogateescape"), policy=policy.default)
        if address in str(message["To"]):
            text = "\n".join(p.get_content() for p in message.walk() if p.get_content_maintype() == "text")
            found.append((str(message["Subject"]), text))
    return found


def run(invoke: Invoke, kind: RequestType, email: str = MARGARET, **fields: Any) -> str:
    from lethe.logic import fulfilment

    request_id = new_request(kind, email, **fields)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    return request_id


def complete(invoke: Invoke, request_id: str, body: dict[str, Any], dataset: str = "azure_recordings") -> Any:
    return admin_call(
        invoke,
        "POST",
        f"/admin/requests/{request_id}/tasks/{dataset}/complete",
        resource=COMPLETE,
        path_parameters={"id": request_id, "dataset": dataset},
        body=body,
    )


def export_json(request_id: str) -> dict[str, Any]:
    from lethe.aws import client
    from lethe.logic.exports import prefix
    from lethe.settings import get_settings

    body = client("s3").get_object(Bucket=get_settings().export_bucket, Key=f"{prefix(request_id)}export.json")
    return json.loads(body["Body"].read())  # type: ignore[no-any-return]


RECORDING = {"recording_id": "rec-0042", "meeting_topic": "Guidance software review", "recorded_at": "2026-11-25"}


def test_an_access_request_waits_for_the_azure_task_and_exports_the_owners_items(invoke: Invoke, demo: None) -> None:
    from lethe.logic.requests import get_request

    # When margaret, whose meeting was recorded, asks for her data
    request_id = run(invoke, RequestType.access)
    # Then every reachable dataset is done, and the request waits for the recordings in Azure
    request = get_request(request_id)
    assert request.status is Status.in_progress and request.datasets_pending == {TASK}
    # And the storage team was emailed once what to do, with the account to search and how to complete it
    ((subject, text),) = mails_to(OWNER)
    assert request_id in subject and "azure_recordings" in subject
    assert "Search by your recordings account (account_id): acct-margaret" in text
    assert f"lethe tasks complete {request_id} azure_recordings --note" in text
    assert "Fields to return: meeting_topic, recorded_at, recording_id" in text
    # And the operator sees the task open
    status, listed = admin_call(invoke, "GET", "/admin/tasks", resource="/admin/tasks")
    assert status == 200
    assert [(t["request_id"], t["dataset"], t["state"]) for t in listed["tasks"]] == [
        (request_id, "azure_recordings", "open")
    ]
    # When an item names a field the dataset does not have, it is refused and nothing changes
    status, error = complete(invoke, request_id, {"note": "found one", "items": [{**RECORDING, "owner_ip": "x"}]})
    assert status == 422 and error["error"]["code"] == "invalid_manual_task"
    assert get_request(request_id).datasets_pending == {TASK}
    # When the owner completes it with the recording found
    status, done = complete(
        invoke, request_id, {"note": "1 recording in container rec-hamilton", "items": [RECORDING], "done_by": OWNER}
    )
    assert status == 200 and (done["state"], done["done_by"], done["items"]) == ("done", OWNER, 1)
    assert drain(invoke) == []
    # Then the request completed, and the export holds the owner's item and says it was done by hand
    assert get_request(request_id).status is Status.completed
    section = export_json(request_id)["datasets"]["azure_recordings"]
    assert section["items"] == [RECORDING]
    assert section["done_by_hand"]["by"] == OWNER
    assert section["done_by_hand"]["note"] == "1 recording in container rec-hamilton"
    assert section["done_by_hand"]["at"] == done["done_at"]
    # And the task is no longer open, and completing it again is a 409
    assert admin_call(invoke, "GET", "/admin/tasks", resource="/admin/tasks")[1] == {"tasks": []}
    status, error = complete(invoke, request_id, {"note": "again", "items": [RECORDING]})
    assert status == 409 and error["error"]["code"] == "invalid_transition"


def test_completing_a_task_for_a_request_that_is_not_waiting_is_a_409(invoke: Invoke, demo: None) -> None:
    from lethe.logic.requests import get_request

    # Given ada, with no recorded meeting: her access request never waits for Azure
    request_id = run(invoke, RequestType.access, "ada@example.com")
    assert get_request(request_id).status is Status.completed
    assert mails_to(OWNER) == []
    # Then completing an Azure task for it is a 409, and a dataset that is not manual a 422
    status, error = complete(invoke, request_id, {"note": "nothing"})
    assert status == 409 and error["error"]["code"] == "invalid_transition"
    status, error = complete(invoke, request_id, {"note": "nothing"}, dataset="accounts")
    assert status == 422


def test_an_erasure_certificate_says_what_was_done_by_hand_and_the_watcher_reminds_the_owner(
    invoke: Invoke, demo: None, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic.requests import get_request

    # Given margaret's erasure, waiting for the Azure task
    request_id = run(invoke, RequestType.erasure)
    assert get_request(request_id).datasets_pending == {TASK}
    # When the deadline watcher runs three days later, twice
    event = {**sample_event("deadline.json"), "time": (datetime.now(UTC) + timedelta(days=3)).isoformat()}
    first = invoke("DeadlineFunction", event)
    second = invoke("DeadlineFunction", event)
    # Then the owner was reminded once
    assert (first["manual_reminders"], second["manual_reminders"]) == (1, 0)
    subjects = [s for s, _ in mails_to(OWNER)]
    assert len(subjects) == 2 and subjects[1].startswith("Lethe: reminder, manual task")
    # And the items of an access request have no place in an erasure
    status, error = complete(invoke, request_id, {"note": "deleted", "items": [RECORDING]})
    assert status == 422 and error["error"]["code"] == "invalid_manual_task"
    # When the owner completes it with a note
    status, _ = complete(invoke, request_id, {"note": "Deleted 1 recording and its replica", "done_by": OWNER})
    assert status == 200
    assert drain(invoke) == []
    # Then the erasure is certified, saying what was done by hand, by whom
    assert get_request(request_id).status is Status.completed
    certificate = next(t for s, t in mails_to(MARGARET) if "erasure" in s.lower())
    assert f"- Meeting recordings kept in Microsoft Azure storage: done by hand by {OWNER} on " in certificate
    assert ": Deleted 1 recording and its replica" in certificate

"""Operator actions through the real AdminApiFunction handler: list, show, approve, deny, extend,
retry, legal holds and the audit check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lethe.domain import Regulation, RequestType, Status
from tests.support.fulfilment import (
    ADMIN_TOKEN,
    admin_call,
    drain,
    get_item,
    mails_to,
    new_request,
    put_items,
    unique_email,
)

Invoke = Callable[..., Any]


@pytest.fixture(autouse=True)
def operator_token(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_ADMIN_TOKEN", ADMIN_TOKEN)
    get_settings.cache_clear()


def action(invoke: Invoke, request_id: str, verb: str, body: Any = None) -> tuple[int, Any]:
    return admin_call(
        invoke,
        "POST",
        f"/admin/requests/{request_id}/{verb}",
        resource=f"/admin/requests/{{id}}/{verb}",
        path_parameters={"id": request_id},
        body=body,
    )


def test_list_and_show_requests(invoke: Invoke) -> None:
    # Given a request awaiting approval
    email = unique_email("list")
    request_id = new_request(RequestType.complaint, email, status=Status.awaiting_approval)
    # When an operator lists that status and opens the request
    status, page = admin_call(
        invoke, "GET", "/admin/requests", resource="/admin/requests", query={"status": ["awaiting_approval"]}
    )
    shown_status, shown = admin_call(
        invoke,
        "GET",
        f"/admin/requests/{request_id}",
        resource="/admin/requests/{id}",
        path_parameters={"id": request_id},
    )
    # Then it is listed and shown with its events, without the subject's address
    assert status == 200 and request_id in [r["request_id"] for r in page["requests"]]
    assert shown_status == 200 and shown["events"][0]["kind"] == "created"
    assert email not in str(shown)


def test_approved_rectification_changes_only_rectifiable_fields(invoke: Invoke) -> None:
    from lethe.logic.requests import get_request, list_events

    # Given a rectification awaiting approval, asking to change a name and a password hash
    email = unique_email("rectify")
    put_items("AccountsTable", [{"account_id": "acct-rect", "email": email, "name": "Ada L", "password_hash": "h1"}])
    request_id = new_request(
        RequestType.rectification,
        email,
        status=Status.awaiting_approval,
        corrections={"name": "Ada Lovelace", "password_hash": "evil"},
    )
    # When an operator approves it and the work runs
    status, _ = action(invoke, request_id, "approve")
    assert status == 200
    assert drain(invoke) == []
    # Then only the rectifiable field changed, and the event records old and new
    item = get_item("AccountsTable", {"account_id": "acct-rect"})
    assert item is not None and item["name"] == "Ada Lovelace" and item["password_hash"] == "h1"
    assert get_request(request_id).status is Status.completed
    rectified = [e for e in list_events(request_id) if e.kind == "rectified"]
    assert rectified[0].detail["changes"] == {"name": {"old": "Ada L", "new": "Ada Lovelace"}}  # type: ignore[index]
    from tests.support.fulfilment import audit_dump

    assert "Ada L" not in audit_dump()


def test_approved_child_data_report_runs_an_erasure(invoke: Invoke) -> None:
    from lethe.logic.requests import get_request

    email = unique_email("child")
    put_items("FeedbackTable", [{"feedback_id": "fb-child", "reporter_email": email, "console_log": "hi"}])
    request_id = new_request(RequestType.child_data_report, email, status=Status.awaiting_approval)
    assert action(invoke, request_id, "approve")[0] == 200
    assert drain(invoke) == []
    assert get_item("FeedbackTable", {"feedback_id": "fb-child"}) is None
    assert get_request(request_id).status is Status.completed


def test_deny_emails_the_reason(invoke: Invoke) -> None:
    email = unique_email("deny")
    request_id = new_request(RequestType.complaint, email, status=Status.awaiting_approval)
    status, body = action(invoke, request_id, "deny", {"reason": "We could not find an account of yours."})
    assert status == 200 and body["status"] == "denied"
    assert any("could not find an account" in text for _, text in mails_to(email))
    # a denied request cannot be approved
    assert action(invoke, request_id, "approve")[0] == 409


def test_extend_once_within_the_regulations_limit(invoke: Invoke) -> None:
    from lethe.logic.requests import get_request

    email = unique_email("extend")
    request_id = new_request(RequestType.complaint, email, status=Status.awaiting_approval, regulation=Regulation.ccpa)
    before = get_request(request_id).due_at
    status, body = action(invoke, request_id, "extend", {"reason": "Many records to review."})
    assert status == 200 and body["extended"] is True
    assert (get_request(request_id).due_at - before).days == 45
    assert any("Many records to review." in text for _, text in mails_to(email))
    again, error = action(invoke, request_id, "extend", {"reason": "Still more."})
    assert again == 409 and error["error"]["code"] == "extension_not_allowed"


def test_extend_refused_where_the_regulation_allows_none(invoke: Invoke) -> None:
    request_id = new_request(RequestType.complaint, unique_email("dpf"), regulation=Regulation.dpf)
    status, error = action(invoke, request_id, "extend", {"reason": "More time"})
    assert status == 409 and error["error"]["code"] == "extension_not_allowed"


def test_retry_of_a_request_that_did_not_fail_is_a_conflict(invoke: Invoke) -> None:
    request_id = new_request(RequestType.complaint, unique_email("retry"), status=Status.awaiting_approval)
    assert action(invoke, request_id, "retry")[0] == 409
    assert action(invoke, "req_missing", "retry")[0] == 404


def test_legal_hold_routes_and_audit_check(invoke: Invoke) -> None:
    from tests.support.fulfilment import audit_dump

    email = unique_email("hold")
    # Place: the email is kept only as an HMAC
    status, hold = admin_call(
        invoke, "POST", "/admin/legal-holds", resource="/admin/legal-holds", body={"email": email, "reason": "case 9"}
    )
    assert status == 201 and hold["subject_ref"] and email not in str(hold)
    # Neither email nor dataset: refused
    assert (
        admin_call(invoke, "POST", "/admin/legal-holds", resource="/admin/legal-holds", body={"reason": "x"})[0] == 422
    )
    # Listed, then lifted
    _, listed = admin_call(invoke, "GET", "/admin/legal-holds", resource="/admin/legal-holds")
    assert hold["hold_id"] in [h["hold_id"] for h in listed["holds"]]
    path = f"/admin/legal-holds/{hold['hold_id']}"
    lifted_status, lifted = admin_call(
        invoke, "DELETE", path, resource="/admin/legal-holds/{id}", path_parameters={"id": hold["hold_id"]}
    )
    assert lifted_status == 200 and lifted["active"] is False
    again = admin_call(
        invoke, "DELETE", path, resource="/admin/legal-holds/{id}", path_parameters={"id": hold["hold_id"]}
    )
    assert again[0] == 404
    # The audit chain verifies, and holds no address
    status, report = admin_call(invoke, "GET", "/admin/audit/verify", resource="/admin/audit/verify")
    assert status == 200 and report["ok"] is True and report["records"] >= 2
    assert email not in audit_dump()


def test_audit_check_detects_an_edited_record(invoke: Invoke) -> None:
    from lethe.aws import client
    from lethe.settings import get_settings

    admin_call(
        invoke, "POST", "/admin/legal-holds", resource="/admin/legal-holds", body={"dataset": "accounts", "reason": "r"}
    )
    client("dynamodb").update_item(
        TableName=get_settings().audit_table,
        Key={"chain": {"S": "main"}, "seq": {"N": "1"}},
        UpdateExpression="SET actor = :a",
        ExpressionAttributeValues={":a": {"S": "someone-else"}},
    )
    status, report = admin_call(invoke, "GET", "/admin/audit/verify", resource="/admin/audit/verify")
    assert status == 200 and report["ok"] is False and report["first_bad_seq"] == 1


def test_bad_cursor_and_unknown_dataset_are_4xx(invoke: Invoke) -> None:
    status, error = admin_call(
        invoke, "GET", "/admin/requests", resource="/admin/requests", query={"cursor": ["not-a-cursor"]}
    )
    assert status == 400 and error["error"]["code"] == "invalid_cursor"
    status, error = admin_call(
        invoke, "POST", "/admin/legal-holds", resource="/admin/legal-holds", body={"dataset": "nowhere", "reason": "r"}
    )
    assert status == 422 and error["error"]["code"] == "unknown_dataset"

"""OpenDSR v2 requests carried out on moto: a hashed address erased to completed, a hash nobody matches,
a cancellation while pending (never worked), and no cancellation once in progress."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.support.fulfilment import drain, get_item, unique_email
from tests.support.opendsr import (
    Invoke,
    callbacks_queued,
    certificate,
    new_request,
    request_id_of,
    seed_account,
    sha256,
    summary_of,
    verify,
)


def test_a_hashed_erasure_runs_to_completed_and_erases_the_account(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str], invoke: Invoke
) -> None:
    email = unique_email("hashed")
    account_id = seed_account(email)
    body = new_request(
        subject_identities=[
            {"identity_type": "email", "identity_format": "sha256", "identity_value": sha256(email).upper()}
        ],
        status_callback_urls=["https://controller.example.com/cb"],
    )
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    assert drain(invoke) == []
    status = json.loads(call("GET", f"/requests/{body['subject_request_id']}", token=controllers["acme"])["body"])
    assert status["request_status"] == "completed"
    account = get_item("AccountsTable", {"account_id": account_id})
    assert account is not None and account["email"] != email and "email_sha256" not in account
    request_id = request_id_of("acme", body["subject_request_id"])
    summary = summary_of(request_id)
    assert summary["controller"] == "acme" and summary["status"] == "completed"
    assert json.loads(summary["outcome"])["datasets"]["accounts"]["anonymized"] == 1
    assert sorted(c["request_status"] for c in callbacks_queued()) == ["completed", "in_progress", "pending"]


def test_a_hash_nobody_matches_completes_having_searched_nothing(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str], invoke: Invoke
) -> None:
    body = new_request(
        subject_identities=[
            {"identity_type": "email", "identity_format": "sha256", "identity_value": sha256(unique_email())}
        ]
    )
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    assert drain(invoke) == []
    status = json.loads(call("GET", f"/requests/{body['subject_request_id']}", token=controllers["acme"])["body"])
    assert status["request_status"] == "completed"
    assert summary_of(request_id_of("acme", body["subject_request_id"])).get("datasets_done") is None


def test_a_cancelled_request_is_never_worked(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str], invoke: Invoke
) -> None:
    email = unique_email("cancel")
    account_id = seed_account(email)
    body = new_request(
        subject_identities=[{"identity_type": "email", "identity_format": "raw", "identity_value": email}]
    )
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    cancelled = call("DELETE", f"/requests/{body['subject_request_id']}", token=controllers["acme"])
    assert cancelled["statusCode"] == 202
    verify(cancelled, certificate(call))
    answer = json.loads(cancelled["body"])
    assert (answer["controller_id"], answer["subject_request_id"]) == ("acme", body["subject_request_id"])
    assert drain(invoke) == []  # the delayed start arrives and finds it cancelled
    status = json.loads(call("GET", f"/requests/{body['subject_request_id']}", token=controllers["acme"])["body"])
    assert status["request_status"] == "cancelled"
    summary = summary_of(request_id_of("acme", body["subject_request_id"]))
    assert summary["status"] == "canceled" and summary.get("datasets_done") is None
    account = get_item("AccountsTable", {"account_id": account_id})
    assert account is not None and account["email"] == email
    again = call("DELETE", f"/requests/{body['subject_request_id']}", token=controllers["acme"])
    assert again["statusCode"] == 400


def test_a_request_in_progress_cannot_be_cancelled(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str], invoke: Invoke
) -> None:
    from lethe.logic import fulfilment

    body = new_request(
        subject_identities=[{"identity_type": "email", "identity_format": "raw", "identity_value": unique_email()}]
    )
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    fulfilment.start(request_id_of("acme", body["subject_request_id"]))
    answer = call("DELETE", f"/requests/{body['subject_request_id']}", token=controllers["acme"])
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["errors"][0]["reason"] == "InvalidState"

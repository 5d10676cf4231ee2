"""Rectification through the real handlers against moto: a correction names only fields a subject may
correct (never one that says whose a record is), each new value fits its field's category, and a refusal
is a 422 that lists what can be corrected, with nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from lethe_local.events import api_event
from tests.support.fulfilment import (
    admin_call,
    drain,
    get_item,
    new_request,
    put_items,
    request_rows,
    unique_email,
)

Invoke = Callable[..., Any]
pytestmark = pytest.mark.usefixtures("operator_token")
CORRECTABLE = {"billing_address", "billing_name", "company", "display_name", "name"}


def file_rectification(invoke: Invoke, corrections: dict[str, str]) -> tuple[int, dict[str, Any]]:
    body = {"type": "rectification", "email": unique_email("rectify"), "corrections": corrections}
    event = api_event("POST", "/requests", headers={"Content-Type": "application/json"}, body=json.dumps(body))
    result = invoke("PublicApiFunction", event)
    return int(result["statusCode"]), json.loads(result["body"])


@pytest.mark.parametrize(
    ("case_id", "corrections"),
    [
        ("subject-attribute", {"email": "someone.else@example.org"}),  # moved the account to another person
        ("subject-attribute-of-another-dataset", {"billing_email": "someone.else@example.org"}),
        ("table-key", {"account_id": "acct-other"}),
        ("customer-attribute", {"customer_id": "cust-other"}),
        ("not-rectifiable", {"password_hash": "x"}),
        ("in-no-dataset", {"favourite_colour": "blue"}),  # was accepted and then changed nothing
        ("one-good-one-bad", {"name": "Ada Lovelace", "guest_email": "b@example.org"}),
    ],
)
def test_a_correction_of_a_field_that_cannot_be_corrected_is_422_listing_what_can(
    invoke: Invoke, case_id: str, corrections: dict[str, str]
) -> None:
    # Given an empty requests table
    rows = request_rows()

    # When a rectification names a field the subject may not correct
    status, body = file_rectification(invoke, corrections)

    # Then it is refused at intake, the message listing every field that can be corrected
    assert status == 422, (case_id, body)
    assert body["error"]["code"] == "invalid_correction"
    listed = body["error"]["message"].split("Fields you can correct: ")[1]
    assert set(listed.split(", ")) == CORRECTABLE
    # And nothing was written
    assert request_rows() == rows


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "\x1b[2J"),  # terminal escapes are not a name
        ("name", "x" * 201),
        ("billing_name", "Ada\x00"),
        ("company", "\u202egro.live"),  # a bidi override
        ("billing_address", "x" * 501),
    ],
)
def test_a_new_value_unfit_for_its_category_is_422(invoke: Invoke, field: str, value: str) -> None:
    rows = request_rows()
    status, body = file_rectification(invoke, {field: value})
    assert status == 422, body
    assert body["error"]["code"] == "invalid_correction" and f"corrections.{field}" in body["error"]["message"]
    assert request_rows() == rows


def test_fit_corrections_are_accepted(invoke: Invoke) -> None:
    status, body = file_rectification(
        invoke, {"name": "Zoë O'Brien-Ünal", "billing_address": "1 Main St\nSpringfield", "company": "CaféX"}
    )
    assert status == 202, body


def test_discovery_lists_the_correctable_fields_and_what_each_takes(invoke: Invoke) -> None:
    result = invoke("PublicApiFunction", api_event("GET", "/discovery"))
    fields = json.loads(result["body"])["correctable_fields"]
    assert set(fields) == CORRECTABLE
    assert fields["name"].startswith("a name")
    assert "email" not in fields


def test_an_identifying_correction_stored_earlier_is_never_applied(invoke: Invoke) -> None:
    # Given a rectification stored before intake refused it, asking to change an account's lookup address
    email, other = unique_email("owner"), unique_email("other")
    put_items("AccountsTable", [{"account_id": "acct-move", "email": email, "name": "Ada L"}])
    request_id = new_request(
        RequestType.rectification,
        email,
        status=Status.awaiting_approval,
        corrections={"email": other, "name": "Ada Lovelace"},
    )

    # When an operator approves it and the work runs
    status, _ = admin_call(
        invoke,
        "POST",
        f"/admin/requests/{request_id}/approve",
        resource="/admin/requests/{id}/approve",
        path_parameters={"id": request_id},
    )
    assert status == 200
    assert drain(invoke) == []

    # Then the name is corrected, but the account still belongs to its owner
    item = get_item("AccountsTable", {"account_id": "acct-move"})
    assert item is not None and item["email"] == email and item["name"] == "Ada Lovelace"

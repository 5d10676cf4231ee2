"""Intake's pure parts: the submission model, ids, codes, the state map and the public view."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from lethe.data.requests import DataSubjectRequest, iso
from lethe.domain import TERMINAL_STATUSES, Regulation, RequestType, Status
from lethe.logic import intake
from lethe.logic.ratelimit import _window
from lethe.logic.requests import ALLOWED


def test_a_minimal_submission_is_valid_and_strips_spaces() -> None:
    submission = intake.Submission.model_validate({"type": "access", "email": "  Ada@Example.org "})
    assert submission.email == "Ada@Example.org"
    assert submission.regulation is None


@pytest.mark.parametrize(
    "email",
    [
        "plain",
        "a@b",
        "a b@example.org",
        "a@@example.org",
        "a\n@example.org",
        "a@exa\x00mple.org",
        "x" * 65 + "@example.org",
        "",
    ],
)
def test_malformed_emails_are_refused(email: str) -> None:
    with pytest.raises(ValidationError):
        intake.Submission.model_validate({"type": "access", "email": email})


def test_rectification_needs_corrections_and_only_it_may_carry_them() -> None:
    with pytest.raises(ValidationError, match="needs corrections"):
        intake.Submission.model_validate({"type": "rectification", "email": "a@example.org"})
    with pytest.raises(ValidationError, match="rectification requests only"):
        intake.Submission.model_validate({"type": "erasure", "email": "a@example.org", "corrections": {"a": "b"}})
    ok = intake.Submission.model_validate(
        {"type": "rectification", "email": "a@example.org", "corrections": {"name": "Ada"}}
    )
    assert ok.corrections == {"name": "Ada"}


def test_too_many_corrections_are_refused() -> None:
    corrections = {f"field{i}": "v" for i in range(51)}
    with pytest.raises(ValidationError):
        intake.Submission.model_validate(
            {"type": "rectification", "email": "a@example.org", "corrections": corrections}
        )


def test_request_ids_are_unguessable_and_distinct() -> None:
    ids = {intake.new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("req_") and len(i) == 4 + 22 for i in ids)


def test_codes_are_six_digits() -> None:
    codes = [intake.new_code() for _ in range(500)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(set(codes)) > 400


def test_every_status_has_a_rule_and_terminal_ones_lead_nowhere() -> None:
    assert set(ALLOWED) == set(Status)
    for status in TERMINAL_STATUSES:
        assert ALLOWED[status] == frozenset()
    assert ALLOWED[Status.identity_unverified] >= {Status.pending, Status.awaiting_approval, Status.expired}


def test_the_public_status_carries_no_contact_details() -> None:
    now = datetime(2027, 1, 31, 12, tzinfo=UTC)
    request = DataSubjectRequest(
        request_id="req_x",
        type=RequestType.access,
        status=Status.pending,
        regulation=Regulation.gdpr,
        created_at=now,
        due_at=now,
        updated_at=now,
        subject_ref="k1:abc",
        email="ada@example.org",
        name="Ada Lovelace",
        details="my account",
        code_hash="deadbeef",
    )
    shown = intake.public_status(request).model_dump_json()
    assert "ada@example.org" not in shown and "Ada" not in shown and "deadbeef" not in shown
    # And neither repr nor a dump of the domain model leaks them into a log line by mistake
    assert "ada@example.org" not in repr(request) and "Ada" not in repr(request)
    assert "code_hash" not in request.model_dump()


def test_stored_instants_sort_as_strings() -> None:
    a = datetime(2027, 1, 31, 9, 5, 7, 123456, tzinfo=UTC)
    b = datetime(2027, 1, 31, 9, 5, 8, tzinfo=UTC)
    assert iso(a) < iso(b)
    assert len(iso(a)) == len(iso(b))


def test_rate_windows_are_hours() -> None:
    window, ends = _window(datetime(2027, 1, 31, 14, 59, 59, tzinfo=UTC))
    assert window == "2027-01-31T14"
    assert ends == datetime(2027, 1, 31, 15, tzinfo=UTC)

"""The OpenDSR request model: what the specification makes malformed is refused, with messages that
never carry an identity value; how Lethe's statuses read as OpenDSR statuses."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from lethe.domain import Status
from lethe.logic.opendsr import OpenDsrRequest
from lethe.logic.opendsr_callbacks import OPENDSR_STATUS, backoff_seconds

SECRET_ADDRESS = "someone.private@example.org"


def body(**overrides: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "regulation": "ccpa",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "access",
        "submitted_time": "2026-11-30T10:00:00.123+01:00",
        "subject_identities": [{"identity_type": "email", "identity_format": "raw", "identity_value": SECRET_ADDRESS}],
    }
    found.update(overrides)
    return found


def test_a_well_formed_request_is_accepted() -> None:
    request = OpenDsrRequest.model_validate(
        body(status_callback_urls=["https://controller.example.com/cb", "http://127.0.0.1:8080/cb"])
    )
    assert request.subject_request_type == "access"
    assert request.status_callback_urls == ["https://controller.example.com/cb", "http://127.0.0.1:8080/cb"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"submitted_time": "2026-11-30 10:00"},
        {"submitted_time": "2026-13-40T10:00:00Z"},
        {"subject_request_id": "a7551968-d5d6-14b2-9831-815ac9017798"},  # v1
        {"regulation": "lgpd"},
        {
            "subject_identities": [
                {"identity_type": "email", "identity_format": "sha1", "identity_value": SECRET_ADDRESS}
            ]
        },
        {
            "subject_identities": [
                {"identity_type": "email", "identity_format": "raw", "identity_value": "x" + SECRET_ADDRESS + ">"}
            ]
        },
        {"status_callback_urls": ["ftp://controller.example.com/cb"]},
    ],
)
def test_malformed_requests_are_refused_without_echoing_identities(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as refused:
        OpenDsrRequest.model_validate(body(**overrides))
    messages = " ".join(str(e["msg"]) for e in refused.value.errors())
    assert SECRET_ADDRESS not in messages


def test_a_sha256_identity_must_be_hex() -> None:
    digest = hashlib.sha256(SECRET_ADDRESS.encode()).hexdigest()
    ok = body(subject_identities=[{"identity_type": "email", "identity_format": "sha256", "identity_value": digest}])
    assert OpenDsrRequest.model_validate(ok).subject_identities[0].identity_value == digest
    with pytest.raises(ValidationError):
        OpenDsrRequest.model_validate(
            body(
                subject_identities=[
                    {"identity_type": "email", "identity_format": "sha256", "identity_value": digest[:-1]}
                ]
            )
        )


def test_every_lethe_status_has_an_opendsr_name() -> None:
    assert set(OPENDSR_STATUS) == set(Status)
    assert set(OPENDSR_STATUS.values()) == {"pending", "in_progress", "completed", "cancelled"}
    assert OPENDSR_STATUS[Status.canceled] == "cancelled" and OPENDSR_STATUS[Status.awaiting_approval] == "pending"


def test_callback_retries_back_off_up_to_fifteen_minutes() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 8, 20)] == [10, 20, 40, 80, 900, 900]


def test_a_roles_sessions_are_one_controller() -> None:
    from lethe.api.opendsr import controller_of

    session = "arn:aws:sts::123456789012:assumed-role/AcmeOpenDsr/botocore-session-1733050000"
    assert controller_of(session) == "arn:aws:sts::123456789012:assumed-role/AcmeOpenDsr"
    assert controller_of("arn:aws:iam::123456789012:user/acme") == "arn:aws:iam::123456789012:user/acme"

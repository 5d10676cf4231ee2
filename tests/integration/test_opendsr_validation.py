"""OpenDSR v2 bad input through the real OpenDsrApiFunction on moto: every malformed field, a duplicate id,
a body that is not JSON and a missing or wrong token are 4xx in the specification's error shape, signed,
with no identity value in them, and write nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.fulfilment import request_rows
from tests.support.opendsr import (
    ADA,
    certificate,
    new_request,
    sha256,
    verify,
)


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("not-a-controller", 403)])
def test_requests_need_a_controller_token(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str], token: str | None, status: int
) -> None:
    before = request_rows()
    answer = call("POST", "/requests", token=token, body=new_request())
    assert answer["statusCode"] == status
    assert json.loads(answer["body"])["error"]["code"] == status
    assert request_rows() == before


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "non-uuid id": lambda b: b.update(subject_request_id="not-a-uuid"),
    "uppercase uuid": lambda b: b.update(subject_request_id=str(uuid.uuid4()).upper()),
    "uuid v1": lambda b: b.update(subject_request_id=str(uuid.uuid1())),
    "unknown type": lambda b: b.update(subject_request_type="rectification"),
    "unknown regulation": lambda b: b.update(regulation="pipeda"),
    "time not RFC 3339": lambda b: b.update(submitted_time="30/11/2026 10:00"),
    "date only": lambda b: b.update(submitted_time="2026-11-30"),
    "unsupported identity type": lambda b: b["subject_identities"].append(
        {"identity_type": "ios_advertising_id", "identity_format": "raw", "identity_value": "ABCD-1234"}
    ),
    "md5 email": lambda b: b.update(
        subject_identities=[{"identity_type": "email", "identity_format": "md5", "identity_value": "ada@example.com"}]
    ),
    "raw email that is not one": lambda b: b.update(
        subject_identities=[{"identity_type": "email", "identity_format": "raw", "identity_value": "ada@@example.com"}]
    ),
    "sha256 that is not hex": lambda b: b.update(
        subject_identities=[
            {"identity_type": "email", "identity_format": "sha256", "identity_value": "ada@example.com"}
        ]
    ),
    "customer id alone": lambda b: b.update(
        subject_identities=[
            {"identity_type": "controller_customer_id", "identity_format": "raw", "identity_value": "acct-ada"}
        ]
    ),
    "no identities": lambda b: b.update(subject_identities=[]),
    "missing id": lambda b: b.pop("subject_request_id"),
    "callback not https": lambda b: b.update(status_callback_urls=["http://controller.example.com/cb"]),
    "callback with credentials": lambda b: b.update(
        status_callback_urls=["https://user:secret@controller.example.com/cb"]
    ),
}


def test_every_malformed_field_is_a_400_in_the_spec_shape_writing_nothing(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str]
) -> None:
    pem = certificate(call)
    before = request_rows()
    answers = {}
    for case, spoil in sorted(MALFORMED.items()):
        body = new_request()
        spoil(body)
        answer = call("POST", "/requests", token=controllers["acme"], body=body)
        answers[case] = answer["statusCode"]
        error = json.loads(answer["body"])["error"]
        assert error["code"] == answer["statusCode"] and error["message"], case
        assert [set(e) for e in error["errors"]] == [{"domain", "reason", "message"}], case
        assert "ada@" not in answer["body"] and sha256(ADA) not in answer["body"], case
        assert "acct-ada" not in answer["body"] and "secret" not in answer["body"], case
        verify(answer, pem)
    assert answers == dict.fromkeys(MALFORMED, 400)
    assert request_rows() == before


def test_a_duplicate_subject_request_id_is_a_400_writing_nothing(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str]
) -> None:
    body = new_request()
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    before = request_rows()
    again = call(
        "POST",
        "/opengdpr_requests",
        token=controllers["acme"],
        body=new_request(subject_request_id=body["subject_request_id"]),
    )
    assert again["statusCode"] == 400
    assert json.loads(again["body"])["error"]["errors"][0]["reason"] == "DuplicateRequest"
    assert request_rows() == before


def test_not_json_is_a_400(call: Callable[..., dict[str, Any]], controllers: dict[str, str]) -> None:
    answer = call("POST", "/requests", token=controllers["acme"], raw="{not json")
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["code"] == 400


def test_in_aws_the_iam_caller_is_the_controller(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.settings import get_settings

    # Given no token configured (as deployed): API Gateway's IAM authorizer names the caller
    monkeypatch.setenv("LETHE_ADMIN_TOKEN", "")
    get_settings.cache_clear()
    role = "arn:aws:sts::123456789012:assumed-role/AcmeOpenDsr"
    body = new_request()
    created = call("POST", "/requests", body=body, caller=f"{role}/session-1")
    assert created["statusCode"] == 201, created["body"]
    assert json.loads(created["body"])["controller_id"] == role
    # Then a later session of the same role reads it, another role cannot, and an unsigned call is refused
    srid = body["subject_request_id"]
    assert call("GET", f"/requests/{srid}", caller=f"{role}/session-2")["statusCode"] == 200
    other = call("GET", f"/requests/{srid}", caller="arn:aws:sts::123456789012:assumed-role/Globex/s")
    assert other["statusCode"] == 404
    assert call("GET", f"/requests/{srid}")["statusCode"] == 403

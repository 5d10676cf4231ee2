"""Data minimization around fulfilment: what Lethe keeps about the person once a request is done,
and under which key the exports are encrypted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lethe.domain import RequestType, Status
from tests.support.fulfilment import drain, new_request, unique_email

Invoke = Callable[..., Any]


def test_a_completed_erasure_keeps_no_contact_details_on_the_request(invoke: Invoke) -> None:
    from lethe.data.models import RequestSummaryRecord
    from lethe.data.requests import pk_of
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    # Given an erasure request for a subject
    email = unique_email("forget")
    request_id = new_request(RequestType.erasure, email)
    # When it is carried out
    fulfilment.start(request_id)
    assert drain(invoke) == []
    # Then it completed, and its row holds only the HMAC reference, not the address or name
    assert get_request(request_id).status is Status.completed
    row = RequestSummaryRecord.get(pk_of(request_id), "SUMMARY").attribute_values
    assert "email" not in row and "name" not in row
    assert email not in str(row)
    assert row["subject_ref"].startswith("k1:")


def test_an_access_request_keeps_its_contact_and_exports_use_the_data_key(invoke: Invoke) -> None:
    from lethe.aws import client
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request
    from lethe.settings import get_settings

    email = unique_email("access")
    request_id = new_request(RequestType.access, email)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    assert get_request(request_id).email == email
    # Every export object is SSE-KMS under Lethe's data key, not the AWS-managed key
    settings = get_settings()
    assert settings.data_key_id
    s3 = client("s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=settings.export_bucket, Prefix="exports/")["Contents"]
        if request_id in o["Key"]
    ]
    assert any(k.endswith("export.json") for k in keys) and any(k.endswith("export.html") for k in keys)
    for key in keys:
        head = s3.head_object(Bucket=settings.export_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].endswith(settings.data_key_id)

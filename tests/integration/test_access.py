"""Access and portability: every dataset's items for the subject (and nobody else's) in export.json
and export.html, with purposes, recipients and retention; a link that redirects while valid and
shows a clear page once expired."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from lethe_local.events import api_event
from tests.support.fulfilment import drain, mails_to, new_request, put_items, unique_email

Invoke = Callable[..., Any]


def export_object(request_id: str, name: str) -> bytes:
    from lethe.aws import client
    from lethe.settings import get_settings

    body = client("s3").get_object(Bucket=get_settings().export_bucket, Key=f"exports/{request_id}/{name}")
    return body["Body"].read()  # type: ignore[no-any-return]


def get_export(invoke: Invoke, token: str, fmt: str | None = None) -> dict[str, Any]:
    return invoke(  # type: ignore[no-any-return]
        "PublicApiFunction",
        api_event(
            "GET",
            f"/exports/{token}",
            resource="/exports/{id}",
            path_parameters={"id": token},
            query={"format": [fmt]} if fmt else None,
        ),
    )


def header(result: dict[str, Any], name: str) -> str:
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    return str(single.get(name) or (multi.get(name) or [""])[0])


@pytest.fixture
def access_done(invoke: Invoke) -> tuple[str, str, str]:
    from lethe.logic import fulfilment

    email, other = unique_email("access"), unique_email("other")
    for who, tag in ((email, "me"), (other, "them")):
        put_items(
            "AccountsTable",
            [{"account_id": f"acct-{tag}", "email": who, "name": "<b>Ada</b>", "last_active_at": "2026-01-01"}],
        )
        put_items("InvoicesTable", [{"invoice_id": f"inv-{tag}", "billing_email": who, "issued_at": "2025-01-01"}])
        put_items("DiagnosticsTable", [{"user_email": who, "recorded_at": "2026-11-01T00:00:00Z"}])
    request_id = new_request(RequestType.access, email)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    return email, other, request_id


def test_export_holds_every_dataset_with_its_context(access_done: tuple[str, str, str]) -> None:
    from lethe.logic.requests import get_request

    _, other, request_id = access_done
    # Then the request is completed and export.json describes every dataset
    assert get_request(request_id).status is Status.completed
    export = json.loads(export_object(request_id, "export.json"))
    assert export["request_id"] == request_id
    assert set(export["datasets"]) >= {"accounts", "invoices", "diagnostics", "guest_sessions"}
    accounts = export["datasets"]["accounts"]
    assert [i["account_id"] for i in accounts["items"]] == ["acct-me"]
    assert accounts["purposes"] and accounts["recipients"] and accounts["retention"]["kept_for"] == "P2Y"
    assert accounts["categories"]["email"] == "user.contact.email"
    assert [i["invoice_id"] for i in export["datasets"]["invoices"]["items"]] == ["inv-me"]
    assert export["datasets"]["guest_sessions"]["items"] == []
    # and nobody else's data is in it
    text = export_object(request_id, "export.json").decode()
    page = export_object(request_id, "export.html").decode()
    assert other not in text and other not in page
    # and the HTML escapes what it shows
    assert "&lt;b&gt;Ada&lt;/b&gt;" in page and "<b>Ada</b>" not in page


def test_link_redirects_while_valid_and_expires_with_a_page(
    access_done: tuple[str, str, str], invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.logic import exports

    email, _, request_id = access_done
    # Given the link emailed to the subject
    texts = [text for subject, text in mails_to(email) if "export" in subject.lower()]
    token = re.search(r"/exports/(\S+)", texts[0]).group(1)  # type: ignore[union-attr]
    # When it is followed
    found = get_export(invoke, token)
    as_json = get_export(invoke, token, "json")
    # Then it redirects to a presigned URL of the export
    assert found["statusCode"] == 302
    assert f"exports/{request_id}/export.html" in header(found, "Location")
    assert "export.json" in header(as_json, "Location")
    # When the link has expired
    monkeypatch.setattr(exports.time, "time", lambda: 10**12)
    expired = get_export(invoke, token)
    # Then the subject sees a clear HTML page, not an S3 error
    assert expired["statusCode"] == 410
    assert "text/html" in header(expired, "Content-Type") and "expired" in expired["body"]
    # And a forged token is refused
    forged = get_export(invoke, token[:-4] + "0000")
    assert forged["statusCode"] == 404


def test_export_streams_many_items_through_multipart(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.data import export_files
    from lethe.logic import fulfilment

    # Given small upload parts, so that a modest export needs several
    monkeypatch.setattr(export_files, "PART_SIZE", 5 * 1024 * 1024)
    email = unique_email("many")
    put_items(
        "DiagnosticsTable",
        [
            {"user_email": email, "recorded_at": f"2026-11-01T00:{n // 60:02d}:{n % 60:02d}Z", "blob": "x" * 40_000}
            for n in range(300)
        ],
    )
    request_id = new_request(RequestType.portability, email)
    # When the export runs
    fulfilment.start(request_id)
    assert drain(invoke) == []
    # Then every item is in it
    export = json.loads(export_object(request_id, "export.json"))
    assert len(export["datasets"]["diagnostics"]["items"]) == 300

"""The emailed export link as a deployed stack sends it: its host and path come from the public base URL
(LETHE_PUBLIC_BASE_URL, a stage path included), and the presigned S3 URL it redirects to is SigV4, which S3
requires for the SSE-KMS export bucket."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lethe.domain import RequestType
from tests.integration.test_access import get_export, header
from tests.support.fulfilment import drain, mails_to, new_request, put_items, unique_email

Invoke = Callable[..., Any]
PUBLIC_BASE_URL = "https://privacy.example.org/prod"


def test_emailed_export_link_uses_the_public_base_url_and_redirects_to_sigv4(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.logic import fulfilment
    from lethe.settings import get_settings

    # Given a stack whose public base URL is a custom host with a stage path
    monkeypatch.setenv("LETHE_PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    get_settings.cache_clear()
    email = unique_email("link")
    put_items("AccountsTable", [{"account_id": "acct-link", "email": email, "last_active_at": "2026-01-01"}])

    # When an access request is fulfilled
    request_id = new_request(RequestType.access, email)
    fulfilment.start(request_id)
    assert drain(invoke) == []

    # Then the emailed link's scheme, host and path come from the public base URL, never 127.0.0.1
    texts = [text for subject, text in mails_to(email) if "export" in subject.lower()]
    assert len(texts) == 1
    links = re.findall(r"https?://\S+/exports/[^\s<>\"']+", texts[0])
    assert links and "127.0.0.1" not in texts[0]
    link = urlsplit(links[0])
    assert (link.scheme, link.netloc) == ("https", "privacy.example.org")
    assert link.path.startswith("/prod/exports/")
    token = link.path.removeprefix("/prod/exports/")

    # When the link is followed (API Gateway hands the function the path without the stage)
    found = get_export(invoke, token)

    # Then it redirects to a SigV4 presigned URL of the export, for the stack's region
    assert found["statusCode"] == 302
    location = header(found, "Location")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "/us-east-1/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert "Signature" not in query and "AWSAccessKeyId" not in query
    assert f"exports/{request_id}/export.html" in urlsplit(location).path


def test_export_pages_link_back_to_the_form_relative_to_where_they_are_served(invoke: Invoke) -> None:
    # When a link that is not valid is followed
    page = get_export(invoke, "not-a-token")
    # Then the page's link to the form is relative (/prod/exports/x -> /prod/), not the host's root
    assert page["statusCode"] == 404
    assert 'href="../"' in page["body"]
    assert 'href="/"' not in page["body"]

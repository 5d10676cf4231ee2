"""Shared by the OpenDSR integration tests: two controllers with tokens of their own, a call through
the real OpenDsrApiFunction, and signature checks with `cryptography` against the served certificate."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from lethe.settings import get_settings
from tests.support.fulfilment import get_item, put_items, receive

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
PREFIX = "/opendsr/v2"
ADA = "ada@example.com"


def sha256(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


def seed_account(email: str) -> str:
    """An account holder whose row carries the hash of the address, as the demo tables do."""
    account_id = f"acct-{uuid.uuid4().hex[:12]}"
    put_items(
        "AccountsTable",
        [
            {
                "account_id": account_id,
                "email": email,
                "email_sha256": sha256(email),
                "name": "Ada Lovelace",
                "last_active_at": "2026-11-01T00:00:00Z",
            }
        ],
    )
    return account_id


@pytest.fixture
def controllers(monkeypatch: pytest.MonkeyPatch, invoke: Invoke) -> dict[str, str]:
    """Two controllers with tokens of their own (and an operator token)."""
    tokens = {"acme": f"acme-{uuid.uuid4()}", "globex": f"globex-{uuid.uuid4()}"}
    monkeypatch.setenv("LETHE_ADMIN_TOKEN", f"op-{uuid.uuid4()}")
    monkeypatch.setenv("LETHE_OPENDSR_CONTROLLER_TOKENS", json.dumps(tokens))
    monkeypatch.setenv("LETHE_OPENDSR_START_DELAY_SECONDS", "0")
    monkeypatch.setenv("LETHE_ERASURE_VERIFY_DELAY_SECONDS", "0")
    get_settings.cache_clear()
    return tokens


@pytest.fixture
def call(invoke: Invoke, sample_event: Callable[[str], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    base = sample_event("admin_api.json")

    def run(
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw: str | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        event = copy.deepcopy(base)
        event.update(path=PREFIX + path, resource=PREFIX + path, httpMethod=method)
        event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None
        event["pathParameters"] = None
        event["requestContext"].update(resourcePath=PREFIX + path, httpMethod=method)
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        event["body"] = raw if raw is not None else (json.dumps(body) if body is not None else None)
        event["isBase64Encoded"] = False
        if caller is not None:  # what API Gateway's AWS_IAM authorizer records for a signed call
            event["requestContext"]["identity"]["userArn"] = caller
        return invoke("OpenDsrApiFunction", event)

    return run


def header(response: dict[str, Any], name: str) -> str:
    values = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    return str(values[name.lower()][0])


def verify(response: dict[str, Any], certificate_pem: str) -> None:
    """Raises InvalidSignature unless X-OpenDSR-Signature signs the raw body with the certificate's key."""
    key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    signature = base64.b64decode(header(response, "X-OpenDSR-Signature"))
    key.verify(signature, response["body"].encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]


def new_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": "2026-11-30T10:00:00Z",
        "subject_identities": [{"identity_type": "email", "identity_format": "sha256", "identity_value": sha256(ADA)}],
        "api_version": "2.0",
    }
    body.update(overrides)
    return body


def certificate(call: Callable[..., dict[str, Any]]) -> str:
    return str(call("GET", "/certificate.pem")["body"])


def callbacks_queued() -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in receive(get_settings().opendsr_callback_queue_url)]


def summary_of(request_id: str) -> dict[str, Any]:
    item = get_item("RequestsTable", {"pk": f"REQ#{request_id}", "sk": "SUMMARY"})
    assert item is not None
    return item


def request_id_of(controller: str, srid: str) -> str:
    from lethe.logic.opendsr import link_for

    return str(link_for(controller, srid)["request_id"])

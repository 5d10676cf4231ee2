"""An OpenDSR controller against the local stack, written from the OpenDSR specification alone (it imports
nothing of Lethe): it reads discovery, downloads the processor certificate, files an erasure for a demo
subject by a sha256 email identity, receives the status callbacks on an HTTP server of its own, verifies
every signature (answers and callbacks) with the certificate's key using `cryptography` before parsing,
and sees `completed`. A second request is cancelled while pending and is never worked."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.conftest import LocalStack

SUBJECT = "user007@example.net"  # a demo subject: an account, diagnostics and a hosted meeting
WAIT_SECONDS = 60
START_DELAY_SECONDS = 5  # how long the local stack keeps a controller's request pending (its default)


@dataclass
class Controller:
    """The controller side of OpenDSR: the processor's key, its calls, and the callbacks it received."""

    base: str
    token: str
    key: rsa.RSAPublicKey | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def verified(self, body: bytes, headers: Any) -> Any:
        """Verify X-OpenDSR-Signature over the raw body, and only then parse it (spec 8.8)."""
        assert self.key is not None
        assert headers.get("X-OpenDSR-Processor-Domain")
        self.key.verify(base64.b64decode(headers["X-OpenDSR-Signature"]), body, padding.PKCS1v15(), hashes.SHA256())
        return json.loads(body)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        answer = requests.request(
            method,
            f"{self.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=30,
        )
        return answer.status_code, self.verified(answer.content, answer.headers)


@pytest.fixture
def controller(local_stack: LocalStack) -> Controller:
    base = f"{local_stack.base_url}/opendsr/v2"
    discovery = requests.get(f"{base}/discovery", timeout=30)
    assert discovery.status_code == 200
    document = discovery.json()
    assert {"identity_type": "email", "identity_format": "sha256"} in document["supported_identities"]
    assert "erasure" in document["supported_subject_request_types"]
    pem = requests.get(document["processor_certificate"], timeout=30)
    assert pem.status_code == 200
    key = x509.load_pem_x509_certificate(pem.content).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    found = Controller(base=base, token=local_stack.admin_token, key=key)
    found.verified(discovery.content, discovery.headers)  # discovery itself is signed by that key
    return found


@pytest.fixture
def callback_url(controller: Controller) -> Iterator[str]:
    """The controller's callback endpoint: verify, then record; 403 for a bad signature (spec 8.8)."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                controller.callbacks.append(controller.verified(raw, self.headers))
                self.send_response(200)
            except (InvalidSignature, KeyError, ValueError, AssertionError):
                controller.refused.append(raw.decode(errors="replace"))
                self.send_response(403)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/opendsr/callbacks"
    finally:
        server.shutdown()
        server.server_close()


def request_body(email: str, callback_url: str) -> dict[str, Any]:
    return {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": "erasure",
        "submitted_time": "2026-12-01T09:00:00Z",
        "subject_identities": [
            {
                "identity_type": "email",
                "identity_format": "sha256",
                "identity_value": hashlib.sha256(email.strip().lower().encode()).hexdigest(),
            }
        ],
        "api_version": "2.0",
        "status_callback_urls": [callback_url],
    }


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def statuses(controller: Controller, subject_request_id: str) -> list[str]:
    return [c["request_status"] for c in controller.callbacks if c["subject_request_id"] == subject_request_id]


def test_a_hashed_erasure_is_completed_with_signed_callbacks(
    controller: Controller, callback_url: str, local_stack: LocalStack
) -> None:
    # Given an erasure request for a demo subject, identified only by the SHA-256 of the address
    body = request_body(SUBJECT, callback_url)
    status, receipt = controller.call("POST", "/requests", body)

    # Then it is received (201) with a signed receipt of exactly what was sent
    assert status == 201, receipt
    assert receipt["subject_request_id"] == body["subject_request_id"]
    assert json.loads(base64.b64decode(receipt["encoded_request"])) == body
    assert receipt["controller_id"] and receipt["processor_signature"]

    # And every status change is called back, signed, until it is completed
    srid = body["subject_request_id"]
    wait_for(lambda: "completed" in statuses(controller, srid), "the completed callback")
    assert statuses(controller, srid) == ["pending", "in_progress", "completed"]
    assert controller.refused == []
    assert {c["status_callback_url"] for c in controller.callbacks} == {callback_url}
    _, current = controller.call("GET", f"/requests/{srid}")
    assert current["request_status"] == "completed"
    # No callback carries the identity (raw or hashed)
    assert SUBJECT not in json.dumps(controller.callbacks)
    assert body["subject_identities"][0]["identity_value"] not in json.dumps(controller.callbacks)
    # And the account no longer holds the address nor its hash (read straight from the stack's DynamoDB)
    account = accounts_table(local_stack).get_item(Key={"account_id": "acct-user007"})["Item"]
    assert account["email"] != SUBJECT and "email_sha256" not in account


def test_a_request_cancelled_while_pending_is_never_worked(
    controller: Controller, callback_url: str, local_stack: LocalStack
) -> None:
    # Given an account of a subject of this test alone (the service stores the address's hash beside it)
    email = f"cancel-{uuid.uuid4().hex[:10]}@example.net"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    before = {
        "account_id": f"acct-{uuid.uuid4().hex[:10]}",
        "email": email,
        "email_sha256": hashlib.sha256(email.encode()).hexdigest(),
        "name": "Cancel Test",
        "company": "Example Ltd",
        "created_at": now,
        "last_active_at": now,
    }
    accounts_table(local_stack).put_item(Item=before)
    # And a request just filed for it (still pending: Lethe waits a moment before working it)
    body = request_body(email, callback_url)
    status, _ = controller.call("POST", "/requests", body)
    assert status == 201
    srid = body["subject_request_id"]

    # When the controller cancels it
    status, cancelled = controller.call("DELETE", f"/requests/{srid}")

    # Then the cancellation is accepted, signed, and the request stays cancelled: never in progress
    assert status == 202, cancelled
    assert cancelled["subject_request_id"] == srid and cancelled["received_time"]
    wait_for(lambda: "cancelled" in statuses(controller, srid), "the cancelled callback")
    time.sleep(START_DELAY_SECONDS + 2)  # past the start delay: the start finds it cancelled
    _, current = controller.call("GET", f"/requests/{srid}")
    assert current["request_status"] == "cancelled"
    assert statuses(controller, srid) == ["pending", "cancelled"]
    # And cancelling again is refused in the spec's error shape
    status, again = controller.call("DELETE", f"/requests/{srid}")
    assert status == 400 and again["error"]["code"] == 400
    # And the subject's account is untouched (read straight from the stack's DynamoDB)
    after = accounts_table(local_stack).get_item(Key={"account_id": before["account_id"]}, ConsistentRead=True)
    # (the retention index files its expiry beside them: Lethe's bookkeeping, not the subject's data)
    assert {name: after["Item"].get(name) for name in before} == before


def accounts_table(stack: LocalStack) -> Any:
    return stack.table("AccountsTable")

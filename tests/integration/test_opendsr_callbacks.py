"""OpenDSR status callbacks through the real OpenDsrCallbackFunction on moto, to an HTTP server the test
runs: each is signed over its raw body (verified with the served certificate); a failed delivery is a
batch item failure, recorded in the request's history (what the operator sees), and comes back later."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from lethe.settings import get_settings
from lethe_local.events import api_event, sqs_event
from tests.support.fulfilment import receive
from tests.support.opendsr import Invoke, certificate, new_request, request_id_of

CALLBACK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:OpenDsrCallbackQueue"


class Receiver:
    def __init__(self) -> None:
        self.answer = 200
        self.received: list[tuple[bytes, dict[str, str]]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append((raw, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(state.answer)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/callbacks"
    finally:
        server.shutdown()
        server.server_close()


def deliver_queued(invoke: Invoke) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    messages = receive(get_settings().opendsr_callback_queue_url)
    return messages, invoke("OpenDsrCallbackFunction", sqs_event(messages, CALLBACK_QUEUE_ARN))


def history(request_id: str) -> list[tuple[str, dict[str, Any]]]:
    from lethe.logic.requests import list_events

    return [(e.kind, dict(e.detail or {})) for e in list_events(request_id) if e.kind.startswith("callback_")]


def test_a_callback_is_posted_signed_and_recorded(
    call: Any, controllers: dict[str, str], invoke: Invoke, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    body = new_request(status_callback_urls=[url])
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    messages, result = deliver_queued(invoke)
    assert len(messages) == 1 and result == {"batchItemFailures": []}
    raw, headers = state.received[0]
    key = x509.load_pem_x509_certificate(certificate(call).encode()).public_key()
    key.verify(  # type: ignore[union-attr]
        base64.b64decode(headers["x-opendsr-signature"]), raw, padding.PKCS1v15(), hashes.SHA256()
    )
    assert headers["x-opendsr-processor-domain"] == "127.0.0.1"
    assert headers["x-opengdpr-signature"] == headers["x-opendsr-signature"]
    callback = json.loads(raw)
    assert callback == {
        "controller_id": "acme",
        "expected_completion_time": callback["expected_completion_time"],
        "status_callback_url": url,
        "subject_request_id": body["subject_request_id"],
        "request_status": "pending",
        "api_version": "2.0",
    }
    request_id = request_id_of("acme", body["subject_request_id"])
    assert [kind for kind, _ in history(request_id)] == ["callback_delivered"]


def test_a_failed_callback_is_retried_later_and_visible_to_the_operator(
    call: Any, controllers: dict[str, str], invoke: Invoke, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.answer = 503
    body = new_request(status_callback_urls=[url])
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    messages, result = deliver_queued(invoke)
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    request_id = request_id_of("acme", body["subject_request_id"])
    assert history(request_id) == [
        ("callback_failed", {"host": "127.0.0.1", "request_status": "pending", "attempt": 1, "answer": 503})
    ]
    # The message comes back only after the backoff (10 s for the first retry), not at once
    assert receive(get_settings().opendsr_callback_queue_url) == []
    # And the operator sees the failure in the request's history (GET /admin/requests/{id})
    event = api_event(
        "GET",
        f"/admin/requests/{request_id}",
        resource="/admin/requests/{id}",
        path_parameters={"id": request_id},
        headers={"Authorization": f"Bearer {get_settings().admin_token}"},
    )
    shown = json.loads(invoke("AdminApiFunction", event)["body"])
    assert "callback_failed" in [e["kind"] for e in shown["events"]]


def test_the_operator_lists_and_redrives_dead_callbacks(
    call: Any, controllers: dict[str, str], invoke: Invoke, receiver: tuple[Receiver, str]
) -> None:
    from lethe.aws import client

    # Given a callback that reached the dead-letter queue
    _, url = receiver
    body = new_request(status_callback_urls=[url])
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    settings = get_settings()
    queued = receive(settings.opendsr_callback_queue_url)
    sqs = client("sqs")
    sqs.send_message(QueueUrl=settings.opendsr_callback_dlq_url, MessageBody=queued[0]["Body"])
    sqs.delete_message(QueueUrl=settings.opendsr_callback_queue_url, ReceiptHandle=queued[0]["ReceiptHandle"])

    def admin(method: str, path: str) -> dict[str, Any]:
        event = api_event(method, path, resource=path, headers={"Authorization": f"Bearer {settings.admin_token}"})
        answer = invoke("AdminApiFunction", event)
        assert answer["statusCode"] == 200, answer["body"]
        return dict(json.loads(answer["body"]))

    # When the operator looks, then sends them again
    dead = admin("GET", "/admin/opendsr/callbacks/dead-letters")["callbacks"]
    redriven = admin("POST", "/admin/opendsr/callbacks/redrive")

    # Then the callback was shown (without its body) and is back on the callback queue, not in the DLQ
    request_id = request_id_of("acme", body["subject_request_id"])
    assert [(d["request_id"], d["host"], d["request_status"]) for d in dead] == [(request_id, "127.0.0.1", "pending")]
    assert redriven == {"redriven": 1}
    assert [json.loads(m["Body"])["request_id"] for m in receive(settings.opendsr_callback_queue_url)] == [request_id]
    assert receive(settings.opendsr_callback_dlq_url) == []

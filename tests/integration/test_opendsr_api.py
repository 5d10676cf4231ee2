"""OpenDSR v2 through the real OpenDsrApiFunction on moto: discovery and the certificate, a receipt and
its status (each answer signed over its raw body), controller isolation, the OpenAPI document."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.support.opendsr import (
    ADA,
    callbacks_queued,
    certificate,
    header,
    new_request,
    request_id_of,
    sha256,
    verify,
)


def test_discovery_and_certificate_are_signed(call: Callable[..., dict[str, Any]], controllers: dict[str, str]) -> None:
    discovery = call("GET", "/discovery")
    certificate = call("GET", "/certificate.pem")
    assert discovery["statusCode"] == 200 and certificate["statusCode"] == 200
    document = json.loads(discovery["body"])
    assert document["supported_subject_request_types"] == ["access", "portability", "erasure"]
    assert {"identity_type": "email", "identity_format": "sha256"} in document["supported_identities"]
    assert document["processor_certificate"].endswith("/opendsr/v2/certificate.pem")
    verify(discovery, certificate["body"])
    verify(certificate, certificate["body"])
    assert header(discovery, "X-OpenDSR-Processor-Domain") == header(discovery, "X-OpenGDPR-Processor-Domain")


def test_a_request_is_received_signed_and_its_status_read(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str]
) -> None:
    body = new_request(status_callback_urls=["https://controller.example.com/opendsr/callbacks"])
    raw = json.dumps(body)
    created = call("POST", "/requests", token=controllers["acme"], raw=raw)
    assert created["statusCode"] == 201, created["body"]
    pem = certificate(call)
    verify(created, pem)
    receipt = json.loads(created["body"])
    assert receipt["controller_id"] == "acme"
    assert receipt["subject_request_id"] == body["subject_request_id"]
    assert base64.b64decode(receipt["encoded_request"]).decode() == raw
    assert receipt["received_time"].endswith("Z") and receipt["expected_completion_time"] > receipt["received_time"]
    # processor_signature signs the receipt's other fields (sorted keys, no whitespace).
    fields = {k: v for k, v in receipt.items() if k != "processor_signature"}
    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    key.verify(  # type: ignore[union-attr]
        base64.b64decode(receipt["processor_signature"]),
        json.dumps(fields, sort_keys=True, separators=(",", ":")).encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    extension = receipt["extensions"]["127.0.0.1"]
    assert extension["sha256_matched_by"] == ["accounts"]
    assert extension["request_id"] == request_id_of("acme", body["subject_request_id"])
    assert "accounts" not in extension["sha256_cannot_match"] and "meetings" in extension["sha256_cannot_match"]
    status = call("GET", f"/requests/{body['subject_request_id']}", token=controllers["acme"])
    assert status["statusCode"] == 200
    verify(status, pem)
    assert json.loads(status["body"])["request_status"] == "pending"
    # The OpenGDPR name of the route reads the same request.
    legacy = call("GET", f"/opengdpr_requests/{body['subject_request_id']}", token=controllers["acme"])
    assert json.loads(legacy["body"])["request_status"] == "pending"
    pending = callbacks_queued()
    assert [(c["url"], c["request_status"]) for c in pending] == [
        ("https://controller.example.com/opendsr/callbacks", "pending")
    ]
    assert ADA not in json.dumps(pending) and sha256(ADA) not in json.dumps(pending)


def test_another_controller_can_neither_read_nor_cancel(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str]
) -> None:
    body = new_request()
    assert call("POST", "/requests", token=controllers["acme"], body=body)["statusCode"] == 201
    srid = body["subject_request_id"]
    read = call("GET", f"/requests/{srid}", token=controllers["globex"])
    cancel = call("DELETE", f"/requests/{srid}", token=controllers["globex"])
    assert (read["statusCode"], cancel["statusCode"]) == (404, 404)
    assert json.loads(read["body"])["error"]["code"] == 404
    # The same subject_request_id from another controller is that controller's own request.
    assert call("POST", "/requests", token=controllers["globex"], body=body)["statusCode"] == 201
    assert (
        json.loads(call("GET", f"/requests/{srid}", token=controllers["acme"])["body"])["request_status"] == "pending"
    )


def test_the_openapi_document_lists_only_opendsr_routes(
    call: Callable[..., dict[str, Any]], controllers: dict[str, str]
) -> None:
    document = json.loads(call("GET", "/openapi.json")["body"])
    assert sorted(document["paths"]) == [
        "/opendsr/v2/certificate.pem",
        "/opendsr/v2/discovery",
        "/opendsr/v2/opengdpr_requests",
        "/opendsr/v2/opengdpr_requests/{subject_request_id}",
        "/opendsr/v2/requests",
        "/opendsr/v2/requests/{subject_request_id}",
    ]

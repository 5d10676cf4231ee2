"""OpenDsrApiFunction: the OpenDSR v2 processor API (lethe.api.opendsr), with its own OpenAPI document.

Every answer, errors included, carries X-OpenDSR-Processor-Domain and X-OpenDSR-Signature (and the
OpenGDPR names): the signature is made here, over the exact body the resolver produced.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from lethe.api import opendsr as routes
from lethe.api.errors import register_opendsr_error_handlers
from lethe.api.resolver import LetheResolver, parse_json, served_base_path
from lethe.handlers.shell import make_tracer, start_function
from lethe.logic import signing
from lethe.logic.opendsr import API_VERSION

tracer = make_tracer()
start_function()
app = LetheResolver(enable_validation=True, json_body_deserializer=parse_json)
register_opendsr_error_handlers(app)
app.include_router(routes.router, prefix=routes.PREFIX)

OPENAPI_DESCRIPTION = (
    "Lethe as an OpenDSR v2 processor: controllers file access, portability and erasure requests they have "
    "verified, read their status and cancel them while pending. Every answer and status callback is signed "
    "(X-OpenDSR-Signature: base64 RSA PKCS#1 v1.5 / SHA-256 over the raw body) by the key of the certificate "
    "served at /opendsr/v2/certificate.pem. Errors follow the specification's shape."
)


@app.get(f"{routes.PREFIX}/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    from aws_lambda_powertools.event_handler.openapi.models import Server  # only for the document

    document = app.get_openapi_json_schema(
        title="Lethe OpenDSR processor API",
        version=API_VERSION,
        description=OPENAPI_DESCRIPTION,
        openapi_version="3.1.0",
        servers=[Server(url=served_base_path(app) or "/")],
    )
    return Response(200, content_types.APPLICATION_JSON, document)


def _signed(result: dict[str, Any]) -> dict[str, Any]:
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = signing.signature_headers(raw)
    result.setdefault("multiValueHeaders", {})
    for name, value in headers.items():
        result["multiValueHeaders"][name] = [value]
    return result


@tracer.capture_lambda_handler(capture_response=False)
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _signed(app.resolve(event, context))

"""OpenDSR v2 routes (a Router, included under /opendsr/v2 by OpenDsrApiFunction).

Controllers authenticate with IAM in AWS (API Gateway's AWS_IAM authorizer on the request routes; the
caller's ARN is its controller id) and locally with a bearer token: the operator token (controller
id "operator") or a per-controller token from LETHE_OPENDSR_CONTROLLER_TOKENS. Discovery and the
certificate are public: a controller reads them to verify signatures. Every answer is signed by the
handler (lethe.handlers.opendsr_api), over the exact body sent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel

from lethe.api.callers import bearer_token, iam_caller, token_matches
from lethe.api.errors import OPENDSR_ERROR_RESPONSES
from lethe.errors import Forbidden, Unauthorized
from lethe.logic import opendsr, signing
from lethe.settings import get_settings

PREFIX = "/opendsr/v2"
OPERATOR_CONTROLLER = "operator"
router = Router()

SubjectRequestId = Annotated[
    str, Path(description="The controller's subject_request_id (lowercase UUID v4)", pattern=opendsr.UUID4)
]


def controller_id() -> str:
    """Who is calling, as a controller id. Raises Unauthorized/Forbidden."""
    event = router.current_event
    settings = get_settings()
    if settings.admin_token:
        token = bearer_token(event.headers)
        if token is None:
            raise Unauthorized("a controller bearer token is required")
        for controller, expected in sorted(settings.opendsr_controller_tokens.items()):
            if token and token_matches(token, expected):
                return controller
        if token and token_matches(token, settings.admin_token):
            return OPERATOR_CONTROLLER
        raise Forbidden("the controller token is not valid")
    caller = iam_caller(event.raw_event.get("requestContext"))
    if caller is None:
        raise Forbidden("OpenDSR requests require an IAM-signed call")
    return controller_of(caller)


_ASSUMED_ROLE = re.compile(r"^(arn:[a-z-]+:sts::\d{12}:assumed-role/[^/]+)/.+$")


def controller_of(caller_arn: str) -> str:
    """A controller's id from its IAM caller: a role's sessions are one controller (the session name,
    which changes at every AssumeRole, is dropped); a user is itself."""
    match = _ASSUMED_ROLE.match(caller_arn)
    return match.group(1) if match else caller_arn


def _documented(status: int, description: str, model: type[BaseModel]) -> dict[int, Any]:
    """A route's `responses`: its signed success body and every error, in the spec's shape."""
    success = {"description": description, "content": {"application/json": {"model": model}}}
    return {status: success, **OPENDSR_ERROR_RESPONSES}  # type: ignore[dict-item]


def _json(status: int, body: str) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=body)


def _answer(model: BaseModel, status: int = 200) -> Response[str]:
    return _json(status, model.model_dump_json(exclude_none=True))


def certificate_url() -> str:
    """On Lethe's own domain: the public base URL (with the stage, as API Gateway serves it)."""
    return f"{get_settings().public_base_url.rstrip('/')}{PREFIX}/certificate.pem"


@router.get(
    "/discovery",
    summary="What this processor supports (OpenDSR discovery)",
    tags=["opendsr"],
    responses=_documented(200, "Supported identities and request types, and the certificate URL", opendsr.Discovery),
)
def discovery() -> Response[str]:
    return _answer(opendsr.discovery(certificate_url()))


@router.get(
    "/certificate.pem",
    summary="The processor certificate that signs every answer and callback",
    tags=["opendsr"],
    responses={
        200: {"description": "PEM certificate", "content": {"application/x-pem-file": {"schema": {"type": "string"}}}},
        **OPENDSR_ERROR_RESPONSES,  # type: ignore[dict-item]
    },
)
def certificate() -> Response[str]:
    return Response(200, "application/x-pem-file", signing.certificate_pem())


def _create(body: opendsr.OpenDsrRequest) -> Response[str]:
    caller = controller_id()
    raw = (router.current_event.decoded_body or "").encode()
    return _answer(opendsr.submit(caller, body, raw), 201)


_CREATE_DOC = {
    "summary": "File a data-subject request verified by the controller",
    "tags": ["opendsr"],
    "responses": _documented(201, "Received: the signed receipt", opendsr.Receipt),
}
_STATUS_DOC = {
    "summary": "The status of one of the controller's requests",
    "tags": ["opendsr"],
    "responses": _documented(200, "Its status (and, when an export is ready, its link)", opendsr.StatusAnswer),
}
_CANCEL_DOC = {
    "summary": "Cancel a request that is still pending (never worked afterwards)",
    "tags": ["opendsr"],
    "responses": _documented(202, "Cancelled", opendsr.Cancellation),
}


@router.post("/requests", **_CREATE_DOC)  # type: ignore[arg-type]
def create_request(body: Annotated[opendsr.OpenDsrRequest, Body()]) -> Response[str]:
    return _create(body)


@router.post("/opengdpr_requests", **{**_CREATE_DOC, "summary": "OpenGDPR name of POST /requests"})  # type: ignore[arg-type]
def create_opengdpr_request(body: Annotated[opendsr.OpenDsrRequest, Body()]) -> Response[str]:
    return _create(body)


@router.get("/requests/<subject_request_id>", **_STATUS_DOC)  # type: ignore[arg-type]
def request_status(subject_request_id: SubjectRequestId) -> Response[str]:
    return _answer(opendsr.status(controller_id(), subject_request_id))


@router.get("/opengdpr_requests/<subject_request_id>", **{**_STATUS_DOC, "summary": "OpenGDPR name"})  # type: ignore[arg-type]
def opengdpr_request_status(subject_request_id: SubjectRequestId) -> Response[str]:
    return _answer(opendsr.status(controller_id(), subject_request_id))


@router.delete("/requests/<subject_request_id>", **_CANCEL_DOC)  # type: ignore[arg-type]
def cancel_request(subject_request_id: SubjectRequestId) -> Response[str]:
    return _answer(opendsr.cancel(controller_id(), subject_request_id), 202)


@router.delete("/opengdpr_requests/<subject_request_id>", **{**_CANCEL_DOC, "summary": "OpenGDPR name"})  # type: ignore[arg-type]
def cancel_opengdpr_request(subject_request_id: SubjectRequestId) -> Response[str]:
    return _answer(opendsr.cancel(controller_id(), subject_request_id), 202)

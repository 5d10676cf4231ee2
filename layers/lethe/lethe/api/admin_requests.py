"""Routes: operator actions on requests, and the audit chain check (registered by lethe.api.admin)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.data import audit
from lethe.domain import Model, Status
from lethe.logic import operator
from lethe.logic.operator import RequestDetail, RequestPage, RequestView

TAGS = ["requests"]
Reason = Annotated[str, Field(min_length=1, max_length=2000, description="Told to the subject")]


class ReasonBody(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Reason


class AuditReport(Model):
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None


def _responses(description: str) -> dict[int, Any]:
    return responses(200, description, errors=ADMIN_ERROR_RESPONSES)


def actor_of(router: Router) -> str:
    """Who acted: the IAM caller in AWS, "operator" behind the local bearer token (every admin route)."""
    identity = (router.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("userArn") or identity.get("caller") or "operator")


router = APIGatewayRouter()


@router.get(
    "/admin/requests",
    summary="List requests by status, earliest due first",
    tags=TAGS,
    responses=_responses("A page of requests"),
)
def list_requests(
    status: Annotated[Status, Query(description="Which status to list")] = Status.pending,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000, description="next_cursor of the previous page")] = None,
) -> RequestPage:
    return operator.list_requests(status, limit=limit, cursor=cursor)


@router.get(
    "/admin/requests/<id>",
    summary="One request with its events",
    tags=TAGS,
    responses=_responses("The request and its events"),
)
def show_request(id: str) -> RequestDetail:
    return operator.show(id)


@router.post(
    "/admin/requests/<id>/approve",
    summary="Approve a request awaiting approval",
    tags=TAGS,
    responses=_responses("Approved"),
)
def approve_request(id: str) -> RequestView:
    return operator.approve(id, actor=actor_of(router))


@router.post(
    "/admin/requests/<id>/deny",
    summary="Deny a request; the reason is emailed",
    tags=TAGS,
    responses=_responses("Denied"),
)
def deny_request(id: str, body: Annotated[ReasonBody, Body()]) -> RequestView:
    return operator.deny(id, reason=body.reason, actor=actor_of(router))


@router.post(
    "/admin/requests/<id>/extend",
    summary="Extend the deadline once, within the regulation's limit; the reason is emailed",
    tags=TAGS,
    responses=_responses("Extended"),
)
def extend_request(id: str, body: Annotated[ReasonBody, Body()]) -> RequestView:
    return operator.extend(id, reason=body.reason, actor=actor_of(router))


@router.post(
    "/admin/requests/<id>/retry",
    summary="Resume a failed request: only datasets not done are queued again",
    tags=TAGS,
    responses=_responses("Queued again"),
)
def retry_request(id: str) -> RequestView:
    return operator.retry(id, actor=actor_of(router))


@router.get(
    "/admin/audit/verify",
    summary="Verify the audit hash chain",
    tags=["audit"],
    responses=_responses("The verdict on the chain"),
)
def verify_audit() -> AuditReport:
    report = audit.verify()
    return AuditReport(ok=report.ok, records=report.records, first_bad_seq=report.first_bad_seq, problem=report.problem)

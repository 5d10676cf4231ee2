"""Routes: legal holds (registered by lethe.api.admin)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field, model_validator

from lethe.api.admin_requests import actor_of
from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.domain import EmailAddress, Model
from lethe.logic import legal_holds
from lethe.logic.legal_holds import Hold

TAGS = ["legal holds"]


class HoldBody(Model):
    """At least one of email and dataset. The email is stored only as an HMAC reference."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailAddress | None = None
    dataset: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = None
    reason: Annotated[str, Field(min_length=1, max_length=2000, description="Why the data must be kept")]

    @model_validator(mode="after")
    def _target(self) -> HoldBody:
        if not self.email and not self.dataset:
            raise ValueError("name an email, a dataset or both")
        return self


class HoldList(Model):
    holds: list[Hold]


router = APIGatewayRouter()


@router.post(
    "/admin/legal-holds",
    summary="Place a legal hold on a subject, a dataset or both",
    tags=TAGS,
    responses=responses(201, "Placed", errors=ADMIN_ERROR_RESPONSES),
)
def place_hold(body: Annotated[HoldBody, Body()]) -> Response[Hold]:
    hold = legal_holds.place(reason=body.reason, email=body.email, dataset=body.dataset, actor=actor_of(router))
    return Response(201, content_types.APPLICATION_JSON, hold)


@router.get(
    "/admin/legal-holds",
    summary="List legal holds",
    tags=TAGS,
    responses=responses(200, "The holds", errors=ADMIN_ERROR_RESPONSES),
)
def list_holds(active: Annotated[bool, Query(description="Only holds still in force")] = False) -> HoldList:
    return HoldList(holds=legal_holds.list_holds(active_only=active))


@router.delete(
    "/admin/legal-holds/<id>",
    summary="Lift a legal hold",
    tags=TAGS,
    responses=responses(200, "Lifted", errors=ADMIN_ERROR_RESPONSES),
)
def lift_hold(id: str) -> Hold:
    return legal_holds.lift(id, actor=actor_of(router))

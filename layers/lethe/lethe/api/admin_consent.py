"""Routes: unsubscribe links, suppression look-up and policy versions (registered by lethe.api.admin)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.domain import EMAIL_PATTERN, EmailAddress
from lethe.logic import policy_versions, unsubscribe
from lethe.logic.policy_versions import VERSION_PATTERN, PublishResult
from lethe.logic.suppression import is_suppressed
from lethe.logic.unsubscribe import UnsubscribeLink


class UnsubscribeLinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailAddress


class Suppression(BaseModel):
    suppressed: bool


class PolicyVersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, Field(pattern=VERSION_PATTERN, description="A new version id, e.g. 2026-11")]
    summary: Annotated[str, Field(min_length=1, max_length=4000, description="What changed, for the notice email")]


def register(app: APIGatewayRestResolver) -> None:
    @app.post(
        "/admin/unsubscribe-links",
        summary="Signed unsubscribe link and List-Unsubscribe headers for a marketing email",
        tags=["consents"],
        responses=responses(200, "The link and headers", errors=ADMIN_ERROR_RESPONSES),
    )
    def unsubscribe_links(body: Annotated[UnsubscribeLinkBody, Body()]) -> UnsubscribeLink:
        return unsubscribe.unsubscribe_link(body.email)

    @app.get(
        "/admin/suppressions",
        summary="Whether an address is suppressed",
        tags=["consents"],
        responses=responses(200, "Whether it is suppressed", errors=ADMIN_ERROR_RESPONSES),
    )
    def suppressions(email: Annotated[str, Query(max_length=254, pattern=EMAIL_PATTERN)]) -> Suppression:
        return Suppression(suppressed=is_suppressed(email))

    @app.post(
        "/admin/policy-versions",
        summary="Publish a policy version and notify subscribers of policy_updates",
        tags=["consents"],
        responses=responses(201, "Published", errors=ADMIN_ERROR_RESPONSES),
    )
    def publish_policy_version(body: Annotated[PolicyVersionBody, Body()]) -> Response[PublishResult]:
        result = policy_versions.publish(body.version, body.summary, actor="operator")
        return Response(201, content_types.APPLICATION_JSON, result)

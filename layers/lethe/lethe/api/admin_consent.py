"""Routes: account consents and device links, unsubscribe links, suppression look-up and policy versions
(registered by lethe.api.admin). The consent writes are for the service that authenticated the account,
server to server: the public API never writes an account id."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from lethe.api.consent_models import Choices, History, SubjectId, SubjectPath
from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.domain import EMAIL_PATTERN, EmailAddress, Model
from lethe.logic import consent, policy_versions, unsubscribe
from lethe.logic.consent import ConsentView, RecordedConsent
from lethe.logic.policy_versions import VERSION_PATTERN, PublishResult
from lethe.logic.suppression import is_suppressed
from lethe.logic.unsubscribe import UnsubscribeLink


class UnsubscribeLinkBody(Model):
    model_config = ConfigDict(extra="forbid")

    email: EmailAddress
    purpose: Annotated[unsubscribe.Unsubscribable, Field(description="The list the email belongs to")] = (
        "marketing_email"
    )


class AccountConsentBody(Choices):
    subject_id: Annotated[SubjectId, Field(description="The account id, as the account service knows it")]


class LinkBody(Model):
    model_config = ConfigDict(extra="forbid")

    account_id: Annotated[SubjectId, Field(description="The account the guest device signed up for")]


class Suppression(Model):
    suppressed: bool


class PolicyVersionBody(Model):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, Field(pattern=VERSION_PATTERN, description="A new version id, e.g. 2026-11")]
    summary: Annotated[str, Field(min_length=1, max_length=4000, description="What changed, for the notice email")]


router = APIGatewayRouter()


@router.post(
    "/admin/consents",
    summary="Record an account's consent choices (from the service that authenticated the account)",
    tags=["consents"],
    responses=responses(201, "Recorded", errors=ADMIN_ERROR_RESPONSES),
)
def record_account_consent(body: Annotated[AccountConsentBody, Body()]) -> Response[RecordedConsent]:
    recorded = consent.record_consent(
        body.subject_id, body.purposes, policy_version=body.policy_version, source=body.source, email=body.email
    )
    return Response(201, content_types.APPLICATION_JSON, recorded)


@router.post(
    # API Gateway needs one name for a path part at one level: here {subject_id} is the device id.
    "/admin/consents/<subject_id>/link",
    summary="Link a guest device (its minted id in the path) to the account it signed up for",
    tags=["consents"],
    responses=responses(200, "Linked: the account's current consent", errors=ADMIN_ERROR_RESPONSES),
)
def link(subject_id: SubjectPath, body: Annotated[LinkBody, Body()]) -> ConsentView:
    return consent.link_device(subject_id, body.account_id)


@router.get(
    "/admin/consents/<subject_id>",
    summary="A subject's current consent per purpose",
    tags=["consents"],
    responses=responses(200, "The current choice per purpose", errors=ADMIN_ERROR_RESPONSES),
)
def get_consent(subject_id: SubjectPath) -> ConsentView:
    return consent.get_consent(subject_id)


@router.get(
    "/admin/consents/<subject_id>/history",
    summary="A subject's consent changes, with the IP hash kept as evidence",
    tags=["consents"],
    responses=responses(200, "The consent changes", errors=ADMIN_ERROR_RESPONSES),
)
def get_history(subject_id: SubjectPath) -> History:
    return History(subject_id=subject_id, changes=consent.get_history(subject_id, operator=True))


@router.post(
    "/admin/unsubscribe-links",
    summary="Signed unsubscribe link and List-Unsubscribe headers for a marketing (or policy) email",
    tags=["consents"],
    responses=responses(200, "The link and headers", errors=ADMIN_ERROR_RESPONSES),
)
def unsubscribe_links(body: Annotated[UnsubscribeLinkBody, Body()]) -> UnsubscribeLink:
    return unsubscribe.unsubscribe_link(body.email, body.purpose)


@router.get(
    "/admin/suppressions",
    summary="Whether an address is suppressed",
    tags=["consents"],
    responses=responses(200, "Whether it is suppressed", errors=ADMIN_ERROR_RESPONSES),
)
def suppressions(email: Annotated[str, Query(max_length=254, pattern=EMAIL_PATTERN)]) -> Suppression:
    return Suppression(suppressed=is_suppressed(email))


@router.post(
    "/admin/policy-versions",
    summary="Publish a policy version and notify subscribers of policy_updates",
    tags=["consents"],
    responses=responses(201, "Published", errors=ADMIN_ERROR_RESPONSES),
)
def publish_policy_version(body: Annotated[PolicyVersionBody, Body()]) -> Response[PublishResult]:
    result = policy_versions.publish(body.version, body.summary, actor="operator")
    return Response(201, content_types.APPLICATION_JSON, result)

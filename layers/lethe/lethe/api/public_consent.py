"""Routes: the consent ledger, email confirmation and one-click unsubscribe (registered by lethe.api.public).

A device's choices are written and read with its secret (X-Lethe-Device-Secret); an operator may read
them with the admin bearer token (locally) instead. Accounts are written only through the admin API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import Field

from lethe.api.callers import authorize_operator
from lethe.api.consent_models import Choices, History, SubjectId, SubjectPath
from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.api.pages import button_page, html_responses, message_page
from lethe.errors import ConfirmationExpired, InvalidToken
from lethe.logic import consent, unsubscribe
from lethe.logic.consent import DEVICE_SECRET_HEADER, MARKETING, ConsentView, RecordedConsent

# Tokens are checked by the logic, not by the resolver, so a bad one gets a page rather than a JSON error.
Token = Annotated[str | None, Query(description="The token from the emailed link")]


class ConsentBody(Choices):
    subject_id: Annotated[
        SubjectId | None,
        Field(
            description="Omit on a device's first consent (an id and secret are minted); then send both, "
            f"the secret in {DEVICE_SECRET_HEADER}"
        ),
    ] = None


READ_ERRORS = ADMIN_ERROR_RESPONSES  # 401 without the device secret, 403 with a wrong one
_STOPPED = {
    MARKETING: "marketing email",
    consent.POLICY_UPDATES: "notices of privacy policy changes",
    unsubscribe.EVERYTHING: "any email about subscriptions, or requests to confirm one,",
}


router = APIGatewayRouter()


def _device_secret() -> str | None:
    return router.current_event.headers.get(DEVICE_SECRET_HEADER.lower())


def _authorize_reader(subject_id: str) -> None:
    """The device's secret, or an operator's bearer token (an IAM caller never reaches this API)."""
    event = router.current_event
    if any(name.lower() == "authorization" for name in event.headers):
        authorize_operator(event.headers, event.raw_event.get("requestContext"))
        return
    consent.authenticate_device(subject_id, _device_secret())


@router.post(
    "/consents",
    summary="Record a device's consent choices",
    description=f"Without subject_id, mints a device id and secret (answered once). With subject_id, "
    f"the device's secret must be sent in {DEVICE_SECRET_HEADER}.",
    tags=["consents"],
    responses=responses(201, "Recorded", errors=READ_ERRORS),
)
def record_consent(body: Annotated[ConsentBody, Body()]) -> Response[RecordedConsent]:
    event = router.current_event
    device_id, minted = consent.claim_device(body.subject_id, _device_secret(), body.purposes, body.email)
    recorded = consent.record_consent(
        device_id,
        body.purposes,
        policy_version=body.policy_version,
        source=body.source,
        email=body.email,
        ip=event.request_context.identity.source_ip,
        user_agent=event.headers.get("user-agent"),
        gpc=(event.headers.get("sec-gpc") or "").strip() == "1",
    )
    return Response(201, content_types.APPLICATION_JSON, recorded.model_copy(update={"device_secret": minted}))


@router.get(
    "/consents/<subject_id>",
    summary="Current consent per purpose (device secret or operator token)",
    tags=["consents"],
    responses=responses(200, "The current choice per purpose", errors=READ_ERRORS),
)
def get_consent(subject_id: SubjectPath) -> ConsentView:
    _authorize_reader(subject_id)
    return consent.get_consent(subject_id)


@router.get(
    "/consents/<subject_id>/history",
    summary="Every consent change, oldest first (device secret or operator token)",
    tags=["consents"],
    responses=responses(200, "The consent changes", errors=READ_ERRORS),
)
def get_history(subject_id: SubjectPath) -> History:
    _authorize_reader(subject_id)
    return History(subject_id=subject_id, changes=consent.get_history(subject_id))


# The routes a person reaches from an email: each answers a page, a bad token included.


@router.get(
    "/subscriptions/confirm",
    summary="Email confirmation page (double opt-in)",
    tags=["consents"],
    responses=html_responses("A page with the confirm button", _404="Not valid or used", _410="Expired"),
)
def confirmation_page(token: Token = None) -> Response[str]:
    try:
        consent.check_confirmation(token or "")
    except (InvalidToken, ConfirmationExpired) as exc:
        return _bad_confirmation(exc)
    return button_page(
        "Confirm your email address",
        "Press the button to confirm that you want to receive what you asked for at this address.",
        f"token={quote(token or '', safe='')}",
        "Confirm",
    )


@router.post(
    "/subscriptions/confirm",
    summary="Confirm an email address (double opt-in)",
    tags=["consents"],
    responses=html_responses("A page saying it is confirmed", _404="Not valid or used", _410="Expired"),
)
def confirm(token: Token = None) -> Response[str]:
    try:
        confirmed = consent.confirm_email(token or "")
    except (InvalidToken, ConfirmationExpired) as exc:
        return _bad_confirmation(exc)
    if not confirmed:
        return message_page(200, "Nothing left to confirm", "The choice this address was given for was withdrawn.")
    return message_page(200, "Your address is confirmed", "Thank you. You can unsubscribe from any email we send.")


@router.get(
    "/unsubscribe",
    summary="Unsubscribe page: your choices for this address",
    tags=["unsubscribe"],
    responses=html_responses("A page with the one-click unsubscribe button", _400="The link is not valid"),
)
def unsubscribe_page(token: Token = None) -> Response[str]:
    try:
        purpose = unsubscribe.check(token or "")
    except InvalidToken:
        return _bad_unsubscribe()
    return button_page(
        f"Unsubscribe from {_STOPPED[purpose]}",
        f"Press the button to stop receiving {_STOPPED[purpose]} at this address.",
        f"token={quote(token or '', safe='')}",
        "Unsubscribe",
    )


@router.post(
    "/unsubscribe",
    summary="One-click unsubscribe (RFC 8058)",
    tags=["unsubscribe"],
    responses=html_responses("A page confirming the unsubscribe", _400="The link is not valid"),
)
def unsubscribe_now(token: Token = None) -> Response[str]:
    try:
        purpose = unsubscribe.unsubscribe(token or "")
    except InvalidToken:
        return _bad_unsubscribe()
    return message_page(200, "You are unsubscribed", f"You will receive no more {_STOPPED[purpose]} here.")


def _bad_confirmation(exc: InvalidToken | ConfirmationExpired) -> Response[str]:
    if isinstance(exc, ConfirmationExpired):
        return message_page(410, "This link has expired", "Choose again where you made the choice to get a new one.")
    return message_page(404, "This link is not valid", "It may have been used already; check that it is complete.")


def _bad_unsubscribe() -> Response[str]:
    return message_page(400, "This link is not valid", "Check that you copied the whole link from the email.")

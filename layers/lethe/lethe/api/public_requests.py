"""Routes: data-subject request intake, verification, status and cancellation (registered by lethe.api.public)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from lethe.api.errors import MAX_BODY_BYTES, responses
from lethe.domain import Model
from lethe.errors import PayloadTooLarge
from lethe.logic import intake
from lethe.logic.intake import Receipt, RequestStatus, Submission

TAGS = ["requests"]


class CodeBody(Model):
    """The one-time code emailed to the subject."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Annotated[str, Field(description="The 6-digit code from the email", pattern=r"^\d{6}$")]


def limit_body(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A body that is valid but padded past the limit is refused too."""
    if len((app.current_event.decoded_body or "").encode()) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body exceeds {MAX_BODY_BYTES} bytes")
    return next_middleware(app)


router = APIGatewayRouter()


@router.post(
    "/requests",
    status_code=202,
    summary="File a data-subject request",
    description=(
        "Stores the request as identity_unverified and emails a one-time code. The answer is the same "
        "whether or not the address is known. A retried identical submission gives the same request; "
        "a client that sends an Idempotency-Key (16 to 64 URL-safe characters, new for each submission, "
        "kept for its retries) shares its request with no one else at the same address, as the form does."
    ),
    responses=responses(202, "Accepted: check your email for the code"),
    tags=TAGS,
    middlewares=[limit_body],
)
def create_request(submission: Submission) -> Receipt:
    source_ip = router.current_event.request_context.identity.source_ip
    client_key = router.current_event.headers.get(intake.IDEMPOTENCY_KEY_HEADER.lower())
    return intake.submit(submission, source_ip=source_ip, client_key=client_key)


@router.post(
    "/requests/<id>/verify",
    summary="Verify the requester with the emailed code",
    responses=responses(200, "Verified: the request moves on"),
    tags=TAGS,
    middlewares=[limit_body],
)
def verify_request(id: str, body: CodeBody) -> RequestStatus:
    return intake.verify(id, body.code)


@router.get(
    "/requests/<id>",
    summary="The status of a request (no personal data, no result link)",
    responses=responses(200, "The request's status and dates"),
    tags=TAGS,
)
def get_request(id: str) -> RequestStatus:
    return intake.status(id)


@router.delete(
    "/requests/<id>",
    summary="Cancel a request not yet in progress (needs the emailed code)",
    responses=responses(200, "Canceled"),
    tags=TAGS,
    middlewares=[limit_body],
)
def cancel_request(id: str, body: CodeBody) -> RequestStatus:
    return intake.cancel(id, body.code)

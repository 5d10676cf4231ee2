"""Routes of the public API. Each route reads typed input, calls one logic function, returns typed output."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import Field

from lethe.api import form, public_consent, public_exports, public_requests
from lethe.api.errors import responses
from lethe.api.pages import unframeable
from lethe.api.resolver import API_TITLE, API_VERSION, serve_swagger
from lethe.domain import Model, Regulation, RequestType
from lethe.logic import intake


class Discovery(Model):
    """OpenDSR-style discovery: what this controller accepts."""

    api_version: str = API_VERSION
    supported_request_types: list[RequestType]
    supported_identities: Annotated[list[str], Field(description="How a requester proves identity")]
    supported_regulations: list[Regulation]
    correctable_fields: Annotated[
        dict[str, str],
        Field(description="Fields a rectification may correct, each with the form its new value must have"),
    ]
    processor_note: str


router = APIGatewayRouter()


@router.get(
    "/discovery",
    summary="Supported request types, identities and regulations",
    tags=["discovery"],
    responses=responses(200, "What this controller accepts"),
)
def discovery() -> Discovery:
    return Discovery(
        supported_request_types=list(RequestType),
        supported_identities=["email (one-time code)"],
        supported_regulations=list(Regulation),
        correctable_fields=intake.correctable_fields(),
        processor_note=(
            "Guests of a customer: data held for that customer is processed on its behalf, "
            "and the request is also routed to the customer."
        ),
    )


def register(app: APIGatewayRestResolver) -> None:
    """The public API's routes and its Swagger page on `app`."""
    serve_swagger(app, path="/swagger", title=API_TITLE, middlewares=[unframeable])
    app.include_router(router)
    for module in (form, public_requests, public_consent, public_exports):
        app.include_router(module.router)

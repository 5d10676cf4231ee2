"""Routes: the consent ledger and one-click unsubscribe (registered by lethe.api.public)."""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from lethe.api.errors import responses
from lethe.logic import consent, unsubscribe
from lethe.logic.consent import EMAIL_PATTERN, SOURCE_PATTERN, SUBJECT_ID_PATTERN, ConsentView, HistoryEntry
from lethe.logic.policy_versions import VERSION_PATTERN

SubjectId = Annotated[
    str,
    Field(pattern=SUBJECT_ID_PATTERN, description="Opaque device or account id (6-128 of A-Z a-z 0-9 . _ : -)"),
]
Token = Annotated[str, Query(min_length=8, max_length=1024, description="The signed token from the unsubscribe link")]


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: SubjectId
    purposes: Annotated[
        dict[Annotated[str, Field(max_length=64)], StrictBool],
        Field(min_length=1, max_length=16, description="Purpose name -> granted; strictly_necessary cannot be false"),
    ]
    policy_version: Annotated[str, Field(pattern=VERSION_PATTERN, description="The policy version shown")]
    source: Annotated[str, Field(pattern=SOURCE_PATTERN, description="Where the choice was made: banner, settings...")]
    email: Annotated[
        str | None,
        Field(
            max_length=254,
            pattern=EMAIL_PATTERN,
            description="Only with a grant of marketing_email or policy_updates: where to reach the subscriber",
        ),
    ] = None


class LinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: SubjectId


class History(BaseModel):
    subject_id: str
    changes: list[HistoryEntry]


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>\n<body><main>{body}</main></body></html>"
    )


def register(app: APIGatewayRestResolver) -> None:
    @app.post(
        "/consents",
        summary="Record consent choices",
        tags=["consents"],
        responses=responses(201, "Recorded"),
    )
    def record_consent(body: Annotated[ConsentBody, Body()]) -> Response[ConsentView]:
        event = app.current_event
        view = consent.record_consent(
            body.subject_id,
            body.purposes,
            policy_version=body.policy_version,
            source=body.source,
            email=body.email,
            ip=event.request_context.identity.source_ip,
            user_agent=event.headers.get("user-agent"),
            gpc=(event.headers.get("sec-gpc") or "").strip() == "1",
        )
        return Response(201, content_types.APPLICATION_JSON, view)

    @app.get(
        "/consents/<subject_id>",
        summary="Current consent per purpose",
        tags=["consents"],
        responses=responses(200, "The current choice per purpose"),
    )
    def get_consent(subject_id: Annotated[str, Path(pattern=SUBJECT_ID_PATTERN)]) -> ConsentView:
        return consent.get_consent(subject_id)

    @app.get(
        "/consents/<subject_id>/history",
        summary="Every consent change, oldest first",
        tags=["consents"],
        responses=responses(200, "The consent changes"),
    )
    def get_history(subject_id: Annotated[str, Path(pattern=SUBJECT_ID_PATTERN)]) -> History:
        return History(subject_id=subject_id, changes=consent.get_history(subject_id))

    @app.post(
        "/consents/<subject_id>/link",
        summary="Link a guest device to the account it signed up for",
        tags=["consents"],
        responses=responses(200, "Linked: the account's current consent"),
    )
    def link(
        subject_id: Annotated[str, Path(pattern=SUBJECT_ID_PATTERN)], body: Annotated[LinkBody, Body()]
    ) -> ConsentView:
        return consent.link_device(subject_id, body.account_id)

    @app.get(
        "/unsubscribe",
        summary="Unsubscribe confirmation page",
        tags=["unsubscribe"],
        responses=responses(200, "A page with the one-click unsubscribe button", content_type=content_types.TEXT_HTML),
    )
    def unsubscribe_page(token: Token) -> Response[str]:
        unsubscribe.check(token)
        action = f"/unsubscribe?token={quote(token, safe='')}"
        body = (
            "<h1>Unsubscribe from marketing email</h1>"
            "<p>Press the button to stop receiving marketing email at this address.</p>"
            f'<form method="post" action="{html.escape(action)}">'
            f'<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return Response(200, content_types.TEXT_HTML, _page("Unsubscribe", body))

    @app.post(
        "/unsubscribe",
        summary="One-click unsubscribe (RFC 8058)",
        tags=["unsubscribe"],
        responses=responses(200, "A page confirming the unsubscribe", content_type=content_types.TEXT_HTML),
    )
    def unsubscribe_now(token: Token) -> Response[str]:
        unsubscribe.unsubscribe(token)
        body = "<h1>You are unsubscribed</h1><p>You will receive no more marketing email at this address.</p>"
        return Response(200, content_types.TEXT_HTML, _page("Unsubscribed", body))

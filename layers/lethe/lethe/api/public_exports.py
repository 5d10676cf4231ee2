"""Route: GET /exports/{token}, the link emailed with an access or portability export (registered by
lethe.api.public). While the link is valid it redirects to a short-lived presigned S3 URL; after that
the subject sees a plain page saying the link has expired, never an S3 XML error."""

from __future__ import annotations

import html
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lethe.api.errors import ERROR_RESPONSES as _ERRORS
from lethe.api.errors import ErrorBody
from lethe.api.pages import PAGE_HEADERS
from lethe.errors import ExportLinkExpired, InvalidToken
from lethe.logic import exports

ERROR_RESPONSES: dict[int, Any] = _ERRORS  # type: ignore[assignment]
_HTML_PAGE = {content_types.TEXT_HTML: {"schema": {"type": "string"}}}
# A valid link redirects; an unknown or expired one is a page for a person, not a JSON error. An id the
# router cannot match at all (e.g. one with a slash) gets the JSON 404 of an unknown route.
RESPONSES: dict[int, Any] = {
    302: {
        "description": "Redirect to the export",
        "headers": {"Location": {"description": "A short-lived presigned URL", "schema": {"type": "string"}}},
        "content": {content_types.TEXT_PLAIN: {"schema": {"type": "string", "maxLength": 0}}},
    },
    **ERROR_RESPONSES,
    404: {
        "description": "A page: the link is not valid (JSON for an unknown route)",
        "content": {**_HTML_PAGE, "application/json": {"model": ErrorBody}},
    },
    410: {"description": "A page: the link has expired", "content": _HTML_PAGE},
}
# The form's link is relative (/exports/<token> -> ../), so it keeps the stage or base path it was served under.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><h1>{title}</h1><p>{message}</p>
<p>You can ask for a new copy of your data at any time from <a href="../">the request form</a>.</p>
</main></body></html>"""


def page(status: int, title: str, message: str) -> Response[str]:
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    return Response(status, content_types.TEXT_HTML, body, headers=dict(PAGE_HEADERS))


router = APIGatewayRouter()


@router.get(
    "/exports/<id>",
    summary="Download an export (redirects to a short-lived link)",
    tags=["exports"],
    responses=RESPONSES,
)
def get_export(
    id: str,
    format: Annotated[Literal["html", "json"], Query(description="html to read, json for a machine")] = "html",
) -> Response[str]:
    try:
        url = exports.resolve_link(id, fmt=format)
    except ExportLinkExpired:
        return page(410, "This link has expired", "For your safety, download links work for 7 days only.")
    except InvalidToken:
        return page(404, "This link is not valid", "Check that you copied the whole link from the email.")
    return Response(302, content_types.TEXT_PLAIN, "", headers={"Location": url, "Cache-Control": "no-store"})

"""Plain HTML pages for a person (unsubscribe, email confirmation, export links): one shape, and one set
of security headers, so no page can be framed (clickjacking a one-click button), load anything, or leak
its token-bearing URL in a Referer."""

from __future__ import annotations

import html
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from lethe.api.errors import ERROR_RESPONSES, ErrorBody

PAGE_CSP = "; ".join(("default-src 'none'", "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"))
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_HTML = {content_types.TEXT_HTML: {"schema": {"type": "string"}}}


def page(status: int, title: str, body: str) -> Response[str]:
    """A page whose `body` is already-escaped HTML; the title is escaped here."""
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>\n<body><main>{body}</main></body></html>"
    )
    return Response(status, content_types.TEXT_HTML, document, headers=dict(PAGE_HEADERS))


def message_page(status: int, title: str, message: str) -> Response[str]:
    return page(status, title, f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>")


def button_page(title: str, message: str, action_query: str, button: str) -> Response[str]:
    """A page with one POST button. The action is relative (`?token=…`), so it works under a stage path."""
    body = (
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f'<form method="post" action="?{html.escape(action_query)}">'
        f'<button type="submit">{html.escape(button)}</button></form>'
    )
    return page(200, title, body)


def html_responses(ok: str, **pages: str) -> dict[int, Any]:
    """OpenAPI responses of a route that answers pages: its success and error pages (by status, e.g.
    `_404="…"`), and the JSON errors the resolver itself may answer (a body that is not UTF-8, too large)."""
    described: dict[Any, Any] = {200: {"description": ok, "content": _HTML}, **ERROR_RESPONSES}
    for key, description in pages.items():
        described[int(key.lstrip("_"))] = {
            "description": description,
            "content": {**_HTML, "application/json": {"model": ErrorBody}},
        }
    return described


def unframeable(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
    """For a page Lethe does not write itself (Swagger UI loads its own assets): forbid framing only."""
    response = next_middleware(app)
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["X-Frame-Options"] = "DENY"
    return response

"""The public request form at GET /."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

FORM_PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lethe - privacy requests</title></head>
<body><main><h1>Privacy requests</h1>
<p>Send a request as JSON to <code>POST /requests</code>; see <a href="/swagger">the API</a>.</p>
</main></body></html>"""


def register(app: APIGatewayRestResolver) -> None:
    @app.get("/", include_in_schema=False)
    def request_form() -> Response[str]:
        return Response(200, content_types.TEXT_HTML, FORM_PLACEHOLDER)

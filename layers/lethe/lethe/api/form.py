"""The public request form at GET /: one self-contained page (inline CSS and JS, no third-party assets).

The page posts JSON to POST /requests, asks for the emailed code on the same page, posts it to
POST /requests/{id}/verify, then follows GET /requests/{id}. Every path it uses is relative to where it is
served, so it works at "/", under an API Gateway stage ("/prod/") or a custom domain's base path. Its parts
live in ./static and are read once at import; the inline script and style are allowed by hash in the
Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

STATIC = Path(__file__).resolve().parent / "static"

REQUEST_TYPES = (
    "access",
    "portability",
    "rectification",
    "erasure",
    "restriction",
    "objection",
    "marketing_opt_out",
    "consent_withdrawal",
    "child_data_report",
    "complaint",
)
# The form's choices; "" ("Somewhere else, or not sure") sends no regulation, so the default rule applies.
REGULATIONS = ("", "gdpr", "uk-gdpr", "ccpa", "dpf")


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def build_page() -> tuple[str, str]:
    """The HTML of the form and the Content-Security-Policy that admits exactly its inline parts."""
    style = (STATIC / "form.css").read_text()
    script = (STATIC / "form.js").read_text()
    html = (STATIC / "form.html").read_text().replace("{{STYLE}}", style).replace("{{SCRIPT}}", script)
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_csp_hash(script)}",
            f"style-src {_csp_hash(style)}",
            "connect-src 'self'",
            "img-src data:",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )
    return html, policy


FORM_HTML, FORM_CSP = build_page()
FORM_HEADERS = {
    "Content-Security-Policy": FORM_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


router = APIGatewayRouter()


@router.get("/", include_in_schema=False)
def request_form() -> Response[str]:
    return Response(200, content_types.TEXT_HTML, FORM_HTML, headers=dict(FORM_HEADERS))

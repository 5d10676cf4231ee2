"""Bodies no parser should choke on, through the real public and admin handlers against moto: JSON nested
a thousand deep, form-encoded and multipart bodies that are not UTF-8. Each is a 4xx in the error schema on
every route that takes a body, and none leaves a request row behind."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from lethe_local.events import api_event
from tests.support.fulfilment import ADMIN_TOKEN, request_rows

Invoke = Callable[..., Any]
pytestmark = pytest.mark.usefixtures("operator_token")

DEEP_JSON = "[" * 1000 + "]" * 1000  # 2 KB; the standard parser overflows its recursion limit on it
DEEP_INSIDE = '{"type": "access", "email": "deep@example.org", "details": ' + '{"a": ' * 40 + "1" + "}" * 41
NOT_UTF8_FORM = b"type=access&email=a%40example.org&name=\xff\xfe"
NOT_UTF8_MULTIPART = (
    b'--fence\r\nContent-Disposition: form-data; name="type"\r\n\r\naccess\r\n'
    b'--fence\r\nContent-Disposition: form-data; name="email"\r\n\r\n\xff\xfe@example.org\r\n--fence--\r\n'
)
# A text body API Gateway passes as a string (no binary media type): the multipart parser cannot map it back.
TEXT_MULTIPART = '--fence\r\nContent-Disposition: form-data; name="type"\r\n\r\n\u20ac\r\n--fence--\r\n'

# (function, method, path, resource, path parameters): every route that reads a body.
ROUTES = [
    ("PublicApiFunction", "POST", "/requests", "/requests", None),
    ("PublicApiFunction", "POST", "/requests/req_x0000000/verify", "/requests/{id}/verify", {"id": "req_x0000000"}),
    ("PublicApiFunction", "DELETE", "/requests/req_x0000000", "/requests/{id}", {"id": "req_x0000000"}),
    ("PublicApiFunction", "POST", "/consents", "/consents", None),
    ("AdminApiFunction", "POST", "/admin/legal-holds", "/admin/legal-holds", None),
    ("AdminApiFunction", "POST", "/admin/unsubscribe-links", "/admin/unsubscribe-links", None),
    ("AdminApiFunction", "POST", "/admin/policy-versions", "/admin/policy-versions", None),
    (
        "AdminApiFunction",
        "POST",
        "/admin/requests/req_x0000000/deny",
        "/admin/requests/{id}/deny",
        {"id": "req_x0000000"},
    ),
]
BODIES = [
    ("deep-json", "application/json", DEEP_JSON),
    ("deep-inside-a-valid-shape", "application/json", DEEP_INSIDE),
    ("form-not-utf8", "application/x-www-form-urlencoded", NOT_UTF8_FORM),
    ("multipart-not-utf8", "multipart/form-data; boundary=fence", NOT_UTF8_MULTIPART),
    ("multipart-text-not-latin1", "multipart/form-data; boundary=fence", TEXT_MULTIPART),
]


def send(invoke: Invoke, route: tuple[Any, ...], content_type: str, body: str | bytes) -> dict[str, Any]:
    function, method, path, resource, params = route
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    event = api_event(method, path, resource=resource, path_parameters=params, headers=headers, body=body)
    return dict(invoke(function, event))


@pytest.mark.parametrize(("case_id", "content_type", "body"), BODIES, ids=[b[0] for b in BODIES])
def test_unreadable_bodies_are_400_in_the_error_schema_and_write_nothing(
    invoke: Invoke, case_id: str, content_type: str, body: str | bytes
) -> None:
    # Given an empty requests table
    before = request_rows()

    # When a body no parser can read safely is sent to each route that takes one
    answers = {f"{route[1]} {route[3]}": send(invoke, route, content_type, body) for route in ROUTES}

    # Then every answer is a 400 in the error schema, naming the body as the fault
    for route, response in answers.items():
        assert response["statusCode"] == 400, (case_id, route, response)
        error = json.loads(response["body"])["error"]
        assert set(error) == {"code", "message"} and error["code"] == "malformed_body", (route, error)
    # And nothing was stored
    assert request_rows() == before


def test_a_base64_body_that_is_not_base64_is_400(invoke: Invoke) -> None:
    # Given an event flagged base64 whose body is not base64
    event = api_event("POST", "/requests", headers={"Content-Type": "application/json"}, body="{}")
    event.update(body="not*base64!", isBase64Encoded=True)

    # When it reaches the public API
    response = invoke("PublicApiFunction", event)

    # Then it is the caller's mistake, told in the error schema
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "malformed_body"


def test_shallow_json_and_utf8_bodies_still_pass(invoke: Invoke) -> None:
    # Given a well-formed submission, as base64 UTF-8 text with a non-ASCII name
    body = json.dumps({"type": "access", "email": "plain.ok@example.org", "name": "Zoë Ünal"}).encode()
    event = api_event("POST", "/requests", headers={"Content-Type": "application/json"}, body=body)
    event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)

    # When it is submitted
    response = invoke("PublicApiFunction", event)

    # Then the strict reading accepts it
    assert response["statusCode"] == 202, response

"""One address rule wherever Lethe takes an address, through the real handlers against moto: an address
is one plain local@domain. Groups, lists, display names, comments and quoted local parts are a 422 in the
error schema, and nothing (no request row, no email) is left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import pytest

from lethe_local.events import api_event
from tests.support.fulfilment import ADMIN_TOKEN, request_rows, sent_mail, unique_email

Invoke = Callable[..., Any]
pytestmark = pytest.mark.usefixtures("operator_token")

ODD_ADDRESSES = [
    "a:;@example.org",  # a group: the mail library found no mailbox in it (was a 502 and an orphaned row)
    "a@example.org,b",  # a list (was a 502 from SES and an orphaned row)
    "x<y@evil.example>",  # a display name: mail went to the inner address
    "Ada <ada@example.org>",
    "ada@example.org (Ada)",
    '"a b"@example.org',
    "a@example.org;b@example.org",
    "a..b@example.org",
    "a@[192.0.2.1]",
    "a@example",
    "a@exa\u00a0mple.org",
    "a\r\nBcc: c@example.org@example.org",
]


def post(invoke: Invoke, function: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"}
    result = invoke(function, api_event("POST", path, headers=headers, body=json.dumps(body)))
    return int(result["statusCode"]), json.loads(result.get("body") or "{}")


# Every route that takes an address, with a body that is valid but for it.
ROUTES: list[tuple[str, str, Callable[[str], dict[str, Any]]]] = [
    ("PublicApiFunction", "/requests", lambda a: {"type": "access", "email": a}),
    ("AdminApiFunction", "/admin/legal-holds", lambda a: {"email": a, "reason": "litigation"}),
    ("AdminApiFunction", "/admin/unsubscribe-links", lambda a: {"email": a}),
]


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_anything_but_one_plain_address_is_422_everywhere_and_leaves_nothing(invoke: Invoke, address: str) -> None:
    # Given no request rows and no mail yet
    rows, mails = request_rows(), len(sent_mail())

    # When each route that takes an address is given this one
    answers = {path: post(invoke, function, path, body(address)) for function, path, body in ROUTES}

    # Then each refuses it with a 422 in the error schema that says what an address is
    for path, (status, body) in answers.items():
        assert status == 422, (path, address, body)
        assert set(body["error"]) == {"code", "message"} and body["error"]["code"] == "invalid_request"
        assert "one plain address" in body["error"]["message"], body
    # And no request row was written and no mail sent
    assert request_rows() == rows
    assert len(sent_mail()) == mails


@pytest.mark.parametrize("address", ["ada.lovelace+dsr@example.org", "o'brien@mail.example.co.uk", "zoe@exämple.de"])
def test_a_plain_address_is_accepted_and_mail_goes_to_it_alone(invoke: Invoke, address: str) -> None:
    # Given a plain address (the host may be internationalized)
    local, _, host = address.partition("@")
    sent_to = f"{local}@{host.encode('idna').decode()}"

    # When it files a request
    status, body = post(invoke, "PublicApiFunction", "/requests", {"type": "access", "email": address})

    # Then the code is mailed to exactly that address, and the To header names only it
    assert status == 202, body
    message = sent_mail()[-1]
    assert set(message.destinations) == {sent_to}  # moto lists the envelope and the To header
    parsed = message_from_bytes(message.raw_data.encode(), policy=policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == [sent_to]


def test_a_message_that_cannot_be_composed_leaves_no_request_row(aws: Any) -> None:
    # Given a submission whose address slipped past the model (built without validation)
    from lethe.logic import intake
    from lethe.logic.intake import Submission

    rows, mails = request_rows(), len(sent_mail())
    odd = Submission.model_construct(
        type=intake.RequestType.access, email="a:;@example.org", regulation=None, name=None, details=None
    )

    # When intake takes it
    with pytest.raises(ValueError, match="plain address"):
        intake.submit(odd, source_ip="198.51.100.9", now=datetime.now(UTC))

    # Then the message was composed before any write: no row, no mail
    assert request_rows() == rows
    assert len(sent_mail()) == mails


def test_a_second_submission_after_a_refused_one_is_not_taken_for_a_retry(invoke: Invoke) -> None:
    # Given a refused submission
    post(invoke, "PublicApiFunction", "/requests", {"type": "access", "email": "x<y@evil.example>"})

    # When a plain one follows from the same source
    email = unique_email("after")
    status, body = post(invoke, "PublicApiFunction", "/requests", {"type": "access", "email": email})

    # Then it is a request of its own
    assert status == 202, body
    assert request_rows() == 2  # its summary row and its "created" event

"""Authorized agents and duplicates through the real handlers: an agent's request sends the code to the
subject, tells the agent each status, and waits for the operator's approval; a verified repeat of an
open request is closed as a duplicate and the subject told the open one's reference."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from lethe.domain import Status
from tests.integration.test_intake_api import call
from tests.support.fulfilment import admin_call, drain, mails_to, put_items, unique_email, use_admin_token

Invoke = Callable[..., Any]
CODE = re.compile(r"verification code is (\d{6})")
AGENT_SUBJECT = "A privacy request you filed: status"


def code_for(email: str) -> str:
    codes = [CODE.search(text) for subject, text in mails_to(email) if "verification code" in subject]
    found = [c.group(1) for c in codes if c]
    assert found, "no code was mailed"
    return found[-1]


def test_an_agents_request_tells_the_agent_and_waits_for_the_operator(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_admin_token(monkeypatch)
    subject, agent = unique_email("person"), unique_email("agent")
    put_items("MarketingContactsTable", [{"email": subject, "name": "P", "last_engaged_at": "2026-10-01"}])

    # When an agent files an erasure for the person
    status, receipt, _ = call(
        invoke,
        "POST",
        "/requests",
        {"type": "erasure", "email": subject, "agent": {"name": "Acme Agents", "email": agent}},
    )
    assert status == 202, receipt
    request_id = receipt["request_id"]

    # Then the code goes to the person, and the agent is told it was filed (with no code)
    code = code_for(subject)
    [code_mail] = [text for s, text in mails_to(subject) if "verification code" in s]
    assert f"filed on your behalf by Acme Agents <{agent}>" in code_mail
    told = mails_to(agent)
    assert [s for s, _ in told] == [AGENT_SUBJECT]
    assert request_id in told[0][1] and "Acme Agents" in told[0][1] and code not in told[0][1]

    # When the person confirms, the request waits for the operator, who sees the agent
    status, shown, _ = call(invoke, "POST", f"/requests/{request_id}/verify", {"code": code})
    assert (status, shown["status"]) == (200, "awaiting_approval")
    status, detail = admin_call(
        invoke,
        "GET",
        f"/admin/requests/{request_id}",
        resource="/admin/requests/{id}",
        path_parameters={"id": request_id},
    )
    assert detail["agent"] == {"name": "Acme Agents", "email": agent}
    assert "reviewing your authorization" in mails_to(agent)[-1][1]

    # When the operator approves, the work runs and the agent hears each step; the answer goes to the person
    status, _ = admin_call(
        invoke,
        "POST",
        f"/admin/requests/{request_id}/approve",
        resource="/admin/requests/{id}/approve",
        path_parameters={"id": request_id},
    )
    assert status == 200
    assert drain(invoke) == []
    texts = [text for _, text in mails_to(agent)]
    assert len(texts) == 4  # filed, awaiting approval, in progress, completed
    assert "approved and in progress" in texts[2]
    assert "completed; the answer was sent to the person directly" in texts[3]
    assert any("erasure" in s.lower() for s, _ in mails_to(subject))
    assert not any("certificate" in s.lower() for s, _ in mails_to(agent))


def test_bad_agents_are_refused_before_anything_is_written(invoke: Invoke) -> None:
    from tests.support.fulfilment import request_rows

    rows = request_rows()
    email = unique_email("person")
    for agent in (
        {"name": "A", "email": "not an address"},
        {"name": "Bad\r\nBcc: x@evil.example", "email": unique_email("agent")},
        {"name": "", "email": unique_email("agent")},
        {"name": "A", "email": unique_email("agent"), "phone": "+1"},
    ):
        status, body, _ = call(invoke, "POST", "/requests", {"type": "access", "email": email, "agent": agent})
        assert status == 422, (agent, body)
    assert request_rows() == rows


def test_a_verified_repeat_of_an_open_request_is_closed_as_a_duplicate(invoke: Invoke) -> None:
    from lethe.data import requests as repository

    email = unique_email("twice")
    # Given an access request, verified and still open
    status, first, _ = call(invoke, "POST", "/requests", {"type": "access", "email": email})
    assert status == 202
    status, shown, _ = call(invoke, "POST", f"/requests/{first['request_id']}/verify", {"code": code_for(email)})
    assert shown["status"] in ("pending", "in_progress")

    # When the same person asks for the same again, and confirms it
    status, second, _ = call(invoke, "POST", "/requests", {"type": "access", "email": email, "details": "again"})
    assert status == 202 and second["request_id"] != first["request_id"]
    status, closed, _ = call(invoke, "POST", f"/requests/{second['request_id']}/verify", {"code": code_for(email)})

    # Then the repeat is closed, the person told the open one's reference, and the first is untouched
    assert (status, closed["status"]) == (200, "canceled")
    notice = [text for subject, text in mails_to(email) if subject == "Your privacy request: already in hand"]
    assert len(notice) == 1 and first["request_id"] in notice[0]
    events = repository.events(second["request_id"])
    assert events[-1].to_status is Status.canceled
    assert events[-1].detail == {"reason": "duplicate of an open request", "duplicate_of": first["request_id"]}
    assert repository.get(first["request_id"]).status in (Status.pending, Status.in_progress)

    # And a request of another type is not a duplicate
    status, other, _ = call(invoke, "POST", "/requests", {"type": "portability", "email": email})
    status, shown, _ = call(invoke, "POST", f"/requests/{other['request_id']}/verify", {"code": code_for(email)})
    assert shown["status"] in ("pending", "in_progress")

"""No personal data in logs: every intake flow runs with all log output captured (the Python logging
tree and the Powertools JSON lines on stdout/stderr), and no email, IP or name may appear in it."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.test_intake_api import call, code_sent_to, wrong


def test_intake_flows_log_request_ids_but_never_emails_ips_or_names(
    invoke: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given verbose logging for Lethe and INFO for everything else, as in production
    from lethe.logic import intake
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_SUBMISSIONS_PER_EMAIL_PER_HOUR", "3")
    get_settings.cache_clear()
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="lethe")
    tag = uuid.uuid4().hex[:8]
    ip = f"192.0.2.{int(tag[:2], 16) % 250 + 1}"
    emails = [f"pii.{tag}.{n}@Example.ORG" for n in range(5)]
    name = f"Zelda Quixote-{tag}"
    request_ids: list[str] = []

    def post(body: Any = None, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        return call(invoke, "POST", "/requests", body, source_ip=ip, **kwargs)

    # And the Powertools handlers' JSON lines captured wherever their stream points (a handler made
    # by an earlier test may still hold that test's stdout)
    call(invoke, "GET", "/discovery", source_ip=ip)
    powertools_lines = io.StringIO()
    for handler in logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"]).handlers:
        if isinstance(handler, logging.StreamHandler):
            monkeypatch.setattr(handler, "stream", powertools_lines)

    # When every flow runs: happy path, wrong code, lockout, cancel, expiry, retries, limits, bad input
    status, receipt, _ = post({"type": "access", "email": emails[0], "name": name, "regulation": "gdpr"})
    request_ids.append(receipt["request_id"])
    code = code_sent_to(emails[0].lower())
    call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": wrong(code)}, source_ip=ip)
    call(invoke, "POST", f"/requests/{receipt['request_id']}/verify", {"code": code}, source_ip=ip)
    call(invoke, "GET", f"/requests/{receipt['request_id']}", source_ip=ip)

    _, locked, _ = post({"type": "erasure", "email": emails[1], "details": f"I am {name}"})
    request_ids.append(locked["request_id"])
    locked_code = code_sent_to(emails[1].lower())
    for _ in range(6):
        call(invoke, "POST", f"/requests/{locked['request_id']}/verify", {"code": wrong(locked_code)}, source_ip=ip)

    _, canceled, _ = post({"type": "rectification", "email": emails[2], "corrections": {"name": name}})
    request_ids.append(canceled["request_id"])
    call(invoke, "DELETE", f"/requests/{canceled['request_id']}", {"code": code_sent_to(emails[2].lower())})

    _, stale, _ = post({"type": "objection", "email": emails[3]})
    request_ids.append(stale["request_id"])
    intake.expire_unverified(datetime.now(UTC) + timedelta(days=8))

    post({"type": "objection", "email": emails[3]})  # an idempotent retry
    limited = [post({"type": "access", "email": emails[4], "details": str(n)})[0] for n in range(4)]
    post(raw='{"type": "access", "email": "' + emails[4])
    post({"type": "access", "email": emails[4], "details": "x" * 20_000})
    post({"type": 3, "email": emails[4], "name": name})
    call(invoke, "POST", "/requests/req_unknownunknown/verify", {"code": "000000"}, source_ip=ip)

    # Then the flows really ran
    assert status == 202 and limited[-1] == 429
    # And the captured output names requests by id, but no email, IP or name
    captured = capsys.readouterr()
    output = "\n".join(
        [
            captured.out,
            captured.err,
            powertools_lines.getvalue(),
            caplog.text,
            *(json.dumps(r.__dict__, default=str) for r in caplog.records),
        ]
    )
    assert any(request_id in output for request_id in request_ids)
    assert '"service":"lethe"' in captured.out + powertools_lines.getvalue(), "no Powertools JSON line was captured"
    lowered = output.lower()
    for secret in [*emails, ip, name, f"pii.{tag}", tag + "@"]:
        assert secret.lower() not in lowered, f"{secret!r} leaked into the logs"

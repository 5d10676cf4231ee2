"""DeadlineFunction: digest of due and overdue requests to operators, the OverdueRequests metric,
expiry of requests left unverified."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


def _request(status: str, due_at: datetime, *, created_at: datetime | None = None) -> str:
    from lethe.data import requests as repository
    from lethe.data.requests import DataSubjectRequest
    from lethe.logic.intake import new_request_id

    request_id = new_request_id()
    email = f"subj-{uuid.uuid4().hex[:8]}@example.com"
    created = created_at or due_at - timedelta(days=30)
    repository.create(
        DataSubjectRequest(
            request_id=request_id,
            type="erasure",
            status=status,
            regulation="gdpr",
            created_at=created,
            due_at=due_at,
            updated_at=created,
            subject_ref=f"k1:{uuid.uuid4().hex}",
            email=email,
        )
    )
    return request_id


def _sent() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends["123456789012"]["us-east-1"].sent_messages)


def test_digest_lists_due_and_overdue_requests_and_emits_the_metric(
    invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from lethe.data import requests as repository

    # Given an overdue request, one due in three days, one due next month, and a completed one overdue
    overdue = _request("in_progress", NOW - timedelta(days=2))
    soon = _request("awaiting_approval", NOW + timedelta(days=3))
    later = _request("pending", NOW + timedelta(days=30))
    done = _request("completed", NOW - timedelta(days=5))
    # And a request never verified for eight days
    stale = _request("identity_unverified", NOW + timedelta(days=22), created_at=NOW - timedelta(days=8))

    # When the deadline watcher runs
    capsys.readouterr()
    result = invoke("DeadlineFunction", sample_event("deadline.json"))

    # Then the operators get one digest naming the due and overdue requests only, without contact details
    assert [r["request_id"] for r in result["overdue"]] == [overdue]
    assert [r["request_id"] for r in result["due_soon"]] == [soon]
    messages = _sent()
    assert len(messages) == 1
    raw = messages[0].raw_data
    assert overdue in raw and soon in raw and later not in raw and done not in raw
    assert set(messages[0].destinations) == {"privacy-ops@example.com"}
    assert "subj-" not in raw
    # And OverdueRequests is emitted as an EMF metric
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("OverdueRequests") == 1.0 or m.get("OverdueRequests") == [1.0] for m in emitted)
    # And the unverified request expired
    assert result["expired_unverified"] == 1
    assert repository.get(stale).status == "expired"
    # And the open requests are counted per status, for the dashboard, after the expiry
    assert result["open_by_status"] == {
        "identity_unverified": 0,
        "pending": 1,
        "awaiting_approval": 1,
        "in_progress": 1,
        "failed": 0,
    }
    by_status = {m["status"]: m["RequestsByStatus"] for m in emitted if "RequestsByStatus" in m}
    assert {k: v if isinstance(v, float) else v[0] for k, v in by_status.items()} == {
        "identity_unverified": 0.0,
        "pending": 1.0,
        "awaiting_approval": 1.0,
        "in_progress": 1.0,
        "failed": 0.0,
    }
    assert all(m.get("service") == "lethe" for m in emitted if "RequestsByStatus" in m)


def test_no_digest_when_nothing_is_due(
    invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given only a request due in a month
    _request("pending", NOW + timedelta(days=30))

    # When the watcher runs, Then no email is sent and nothing is overdue
    result = invoke("DeadlineFunction", sample_event("deadline.json"))
    assert (result["overdue"], result["due_soon"], result["digest_sent"]) == ([], [], False)
    assert _sent() == []


def test_a_failed_digest_query_does_not_keep_requests_from_expiring(
    invoke: Callable[..., Any],
    sample_event: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lethe.data import requests as repository
    from lethe.errors import RunIncomplete
    from lethe.logic import deadline_watch

    # Given a request never verified for eight days, and the digest's query failing
    stale = _request("identity_unverified", NOW + timedelta(days=22), created_at=NOW - timedelta(days=8))

    def unavailable(now: datetime) -> Any:
        raise ConnectionError("the requests table did not answer")

    monkeypatch.setattr(deadline_watch, "due_requests", unavailable)

    # When the watcher runs, Then the run fails, naming the job that failed
    capsys.readouterr()
    with pytest.raises(RunIncomplete, match="find_due"):
        invoke("DeadlineFunction", sample_event("deadline.json"))
    # And the other jobs were done: the unverified request expired
    assert repository.get(stale).status == "expired"
    # And the failure is a metric as well as an error
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("DeadlineWatchJobsFailed" in m for m in emitted)


def test_one_request_that_cannot_expire_does_not_keep_the_others_open(
    invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.data import requests as repository
    from lethe.errors import RunIncomplete
    from lethe.logic import intake

    # Given three requests never verified, and the write that expires the first one failing
    stale = [
        _request("identity_unverified", NOW + timedelta(days=22), created_at=NOW - timedelta(days=8)) for _ in range(3)
    ]
    original = intake.transition
    failing = {stale[0]}

    def transition(request_id: str, *args: Any, **kwargs: Any) -> Any:
        if request_id in failing:
            raise ConnectionError("throttled")
        return original(request_id, *args, **kwargs)

    monkeypatch.setattr(intake, "transition", transition)

    # When the watcher runs, Then the run fails and the other two expired
    with pytest.raises(RunIncomplete, match="expire_unverified"):
        invoke("DeadlineFunction", sample_event("deadline.json"))
    assert [repository.get(r).status for r in stale] == ["identity_unverified", "expired", "expired"]

    # And the next run expires the last one
    failing.clear()
    result = invoke("DeadlineFunction", sample_event("deadline.json"))
    assert result["expired_unverified"] == 1 and result["failed"] == []
    assert repository.get(stale[0]).status == "expired"

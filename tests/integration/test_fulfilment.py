"""Fan-out and the dataset tasks, through the real worker handler against moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lethe.domain import RequestType, Status
from tests.support.fulfilment import drain, get_item, new_request, put_items, unique_email


def test_access_request_completes_with_every_dataset_done(invoke: Callable[..., Any]) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    # Given a subject with an account and a request that is pending
    email = unique_email("ada")
    put_items("AccountsTable", [{"account_id": "a-1", "email": email, "name": "Ada", "last_active_at": "2026-01-01"}])
    request_id = new_request(RequestType.access, email)
    # When fulfilment starts and the queue drains
    fulfilment.start(request_id)
    failures = drain(invoke)
    # Then the request completed and every dataset is done
    request = get_request(request_id)
    assert failures == []
    assert request.status is Status.completed
    assert request.datasets_pending == frozenset()
    assert "accounts" in request.datasets_done
    assert get_item("AccountsTable", {"account_id": "a-1"}) is not None

"""Fixtures shared by integration tests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lethe.settings import get_settings
from tests.support.fulfilment import use_admin_token


@pytest.fixture
def admin_token(monkeypatch: pytest.MonkeyPatch, invoke: Any) -> str:
    """An operator bearer token the admin API (and the public reads) accept for this test."""
    token = f"itest-{uuid.uuid4()}"
    monkeypatch.setenv("LETHE_ADMIN_TOKEN", token)
    get_settings.cache_clear()
    return token


@pytest.fixture
def operator_token(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin API accepts tests.support.fulfilment.ADMIN_TOKEN (use with admin_call)."""
    use_admin_token(monkeypatch)


# OpenDSR: `controllers` (two controller tokens) and `call` (a call through OpenDsrApiFunction).
from tests.support.opendsr import call, controllers  # noqa: E402, F401

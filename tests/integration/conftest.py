"""Fixtures of the integration tests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lethe.settings import get_settings


@pytest.fixture
def admin_token(monkeypatch: pytest.MonkeyPatch, invoke: Any) -> str:
    """An operator bearer token the admin API (and the public reads) accept for this test."""
    token = f"itest-{uuid.uuid4()}"
    monkeypatch.setenv("LETHE_ADMIN_TOKEN", token)
    get_settings.cache_clear()
    return token

"""Fixtures shared by integration tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fulfilment import use_admin_token


@pytest.fixture
def operator_token(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin API accepts tests.support.fulfilment.ADMIN_TOKEN (use with admin_call)."""
    use_admin_token(monkeypatch)

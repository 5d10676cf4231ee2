"""Fulfilment: carries a verified request out across every dataset of the inventory."""

from __future__ import annotations


def start(request_id: str, *, actor: str = "system") -> None:
    """Move a pending request to in_progress and queue one task per dataset."""

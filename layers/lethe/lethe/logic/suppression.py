"""The suppression list: HMACs of addresses that opted out of marketing or were erased,
so that marketing never reaches them again."""

from __future__ import annotations

from datetime import UTC, datetime

from lethe.data.models import SuppressionRecord
from lethe.data.writes import save_if
from lethe.keys import key_ring


def suppress(email: str, *, reason: str, source: str) -> str:
    """Add an address (idempotent: a second call keeps the first reason and time). Returns its reference."""
    ref = key_ring().subject_ref(email)
    if not is_suppressed(email):
        suppress_ref(ref, reason=reason, source=source)
    return ref


def suppress_ref(ref: str, *, reason: str, source: str) -> str:
    """Add an address known only by its reference (a one-click unsubscribe token carries no address)."""
    record = SuppressionRecord(ref, reason=reason, at=datetime.now(UTC).isoformat(), source=source)
    save_if(record, SuppressionRecord.subject_ref.does_not_exist())  # already there: the first one stands
    return ref


def is_suppressed(email: str) -> bool:
    return any(SuppressionRecord.count(ref) for ref in key_ring().subject_refs(email))

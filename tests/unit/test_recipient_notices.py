"""Recipient notices (GDPR Art. 19): which datasets a request touched, stable notice ids, the
signature a receiver checks, and the retry backoff."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from lethe.logic import recipients


def test_touched_datasets_are_those_where_something_was_found_changed_or_done_by_hand() -> None:
    results = {
        "accounts": {"action": "anonymize", "found": 1, "anonymized": 1},
        "guest_sessions": {"action": "delete", "found": 0, "deleted": 0},
        "meetings": {"action": "none", "found": 0, "reached": False},
        "invoices": {"action": "isolate", "isolated": 2},
        "azure_recordings": {"action": "manual", "by_hand": {"by": "storage-team@example.com"}},
        "feedback": {"action": "rectify", "found": 2, "rectified": 0},
    }
    assert recipients.touched(results) == ["accounts", "azure_recordings", "feedback", "invoices"]


def test_a_notice_id_is_stable_readable_and_tells_recipients_apart() -> None:
    first = recipients.notice_id("accounts", "CaféX Communications Limited (UK subsidiary)")
    assert first == recipients.notice_id("accounts", "CaféX Communications Limited (UK subsidiary)")
    assert first.startswith("accounts.caf-x-communications-limited-uk-subsidia.")
    # Names that slug alike still get their own notice
    assert recipients.notice_id("accounts", "A & B") != recipients.notice_id("accounts", "A + B")
    assert recipients.notice_id("accounts", "A") != recipients.notice_id("feedback", "A")


def test_the_signature_is_hmac_sha256_of_the_raw_body_under_the_key() -> None:
    body = b'{"notice_id":"accounts.x.00000000"}'
    expected = "sha256=" + hmac.new(b"shared-key", body, hashlib.sha256).hexdigest()
    assert recipients.signature(body, b"shared-key") == expected
    assert recipients.signature(body + b" ", b"shared-key") != expected


@pytest.mark.parametrize(("receive", "seconds"), [(1, 30), (2, 60), (3, 120), (5, 480), (9, 900)])
def test_backoff_doubles_from_the_base_and_is_capped_at_15_minutes(
    receive: int, seconds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.settings import get_settings

    monkeypatch.delenv("LETHE_RECIPIENT_NOTICE_BACKOFF_SECONDS", raising=False)
    get_settings.cache_clear()
    try:
        assert recipients.backoff_seconds(receive) == seconds
    finally:
        get_settings.cache_clear()

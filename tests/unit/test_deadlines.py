"""Legal deadlines per regulation: calendar months clamp to month ends; extensions are data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lethe.domain import Regulation
from lethe.logic import deadlines

instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC))
regulations = st.sampled_from([*Regulation, None])


@pytest.mark.parametrize(
    ("regulation", "received", "due"),
    [
        ("gdpr", datetime(2027, 1, 31, 9, 30, tzinfo=UTC), datetime(2027, 2, 28, 9, 30, tzinfo=UTC)),
        ("gdpr", datetime(2028, 1, 31, 9, 30, tzinfo=UTC), datetime(2028, 2, 29, 9, 30, tzinfo=UTC)),
        ("uk-gdpr", datetime(2027, 3, 31, tzinfo=UTC), datetime(2027, 4, 30, tzinfo=UTC)),
        ("gdpr", datetime(2027, 12, 15, tzinfo=UTC), datetime(2028, 1, 15, tzinfo=UTC)),
        ("ccpa", datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 3, 17, tzinfo=UTC)),
        ("dpf", datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 15, tzinfo=UTC)),
        (None, datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 31, tzinfo=UTC)),
        ("default", datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 3, 3, tzinfo=UTC)),
    ],
)
def test_due_at_follows_the_regulation(regulation: str | None, received: datetime, due: datetime) -> None:
    assert deadlines.due_at(regulation, received) == due


def test_due_at_is_computed_in_utc() -> None:
    # Given a request received at 23:30 on 31 January in UTC-5 (04:30 on 1 February in UTC)
    received = datetime(2027, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    # Then the GDPR month counts from 1 February UTC
    assert deadlines.due_at("gdpr", received) == datetime(2027, 3, 1, 4, 30, tzinfo=UTC)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadlines.due_at("gdpr", datetime(2027, 1, 1))


def test_unknown_regulation_is_refused() -> None:
    with pytest.raises(ValueError):
        deadlines.due_at("hipaa", datetime(2027, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("regulation", "limit"), [("gdpr", "P2M"), ("uk-gdpr", "P2M"), ("ccpa", "P45D"), ("dpf", None), (None, None)]
)
def test_extension_limits_are_data(regulation: str | None, limit: str | None) -> None:
    extension = deadlines.extension_limit(regulation)
    assert (extension.text if extension else None) == limit


def test_latest_extended_due_at_counts_from_the_original_deadline() -> None:
    received = datetime(2027, 1, 31, tzinfo=UTC)
    assert deadlines.latest_extended_due_at("gdpr", received) == datetime(2027, 4, 28, tzinfo=UTC)
    assert deadlines.latest_extended_due_at("ccpa", received) == datetime(2027, 5, 1, tzinfo=UTC)
    assert deadlines.latest_extended_due_at("dpf", received) is None


def test_every_regulation_has_a_rule() -> None:
    assert set(deadlines.DEADLINES) == set(Regulation)


@given(regulation=regulations, received=instants)
def test_due_at_is_always_after_receipt_and_within_bounds(regulation: Regulation | None, received: datetime) -> None:
    due = deadlines.due_at(regulation, received)
    assert received + timedelta(days=28) <= due <= received + timedelta(days=45)
    # The time of day is kept: deadlines move by whole days
    assert due.timetz() == received.timetz()


@given(received=instants)
def test_gdpr_month_lands_on_the_same_day_or_the_month_end(received: datetime) -> None:
    due = deadlines.due_at("gdpr", received)
    assert (due.year * 12 + due.month) - (received.year * 12 + received.month) == 1
    next_day = due + timedelta(days=1)
    assert due.day == received.day or (due.day < received.day and next_day.month != due.month)


@given(regulation=regulations, received=instants)
def test_extended_deadline_is_never_before_the_deadline(regulation: Regulation | None, received: datetime) -> None:
    latest = deadlines.latest_extended_due_at(regulation, received)
    if latest is not None:
        assert latest > deadlines.due_at(regulation, received)


@given(regulation=regulations, a=instants, b=instants)
def test_due_at_is_monotonic_by_day(regulation: Regulation | None, a: datetime, b: datetime) -> None:
    # By calendar day: 30 and 31 January both answer on 28 February, whatever the hour
    early, late = sorted((a, b))
    assert deadlines.due_at(regulation, early).date() <= deadlines.due_at(regulation, late).date()

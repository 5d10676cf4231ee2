from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lethe.durations import Duration


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("P1M", datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)),
        ("P1M", datetime(2028, 1, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        ("P2Y", datetime(2024, 2, 29, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)),
        ("P45D", datetime(2026, 11, 21, tzinfo=UTC), datetime(2027, 1, 5, tzinfo=UTC)),
        ("PT15M", datetime(2026, 11, 21, 23, 50, tzinfo=UTC), datetime(2026, 11, 22, 0, 5, tzinfo=UTC)),
        ("P1W", datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC)),
    ],
)
def test_calendar_arithmetic(text: str, start: datetime, expected: datetime) -> None:
    assert Duration.parse(text).after(start) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "30D", "P1.5Y", "P-1D", "1 month", "PT1H30"])
def test_rejects_what_is_not_an_iso_duration(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        Duration.parse(text)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
    st.integers(0, 30),
    st.integers(0, 36),
    st.integers(0, 400),
)
def test_a_positive_duration_always_moves_forward(start: datetime, years: int, months: int, days: int) -> None:
    text = "P" + (f"{years}Y" if years else "") + (f"{months}M" if months else "") + f"{days}D"
    duration = Duration.parse(text)
    end = duration.after(start)
    assert end >= start
    # And stepping back never lands after the start (month clamping only shortens)
    assert duration.before(end) <= start

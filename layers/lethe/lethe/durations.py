"""ISO 8601 durations with calendar arithmetic (P1M from 31 January is the last day of February)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@dataclass(frozen=True)
class Duration:
    years: int = 0
    months: int = 0
    days: int = 0
    seconds: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not an ISO 8601 duration such as P30D, P2Y or PT15M")
        part = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
        return cls(
            years=part["years"],
            months=part["months"],
            days=part["days"] + 7 * part["weeks"],
            seconds=part["hours"] * 3600 + part["minutes"] * 60 + part["seconds"],
            text=text.strip(),
        )

    def after(self, start: datetime) -> datetime:
        """`start` plus this duration; months clamp to the month's last day."""
        month_index = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + timedelta(days=self.days, seconds=self.seconds)

    def before(self, end: datetime) -> datetime:
        """`end` minus this duration, undoing `after` in reverse order (days, then months), so that
        `before(after(t)) <= t` always holds."""
        end = end - timedelta(days=self.days, seconds=self.seconds)
        month_index = end.month - 1 - self.months - 12 * self.years
        year, month = end.year + month_index // 12, month_index % 12 + 1
        day = min(end.day, calendar.monthrange(year, month)[1])
        return end.replace(year=year, month=month, day=day)

    def __str__(self) -> str:
        return self.text

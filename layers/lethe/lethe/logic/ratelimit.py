"""Submission limits: TTL'd counters in ControlTable, one per subject or source address per hour.

Keys hold HMACs, never the email or IP: pk "RATE#<kind>#<hmac>", sk the hour window ("2027-01-31T14").
Each submission is one atomic ADD; DynamoDB's TTL removes the counter after its window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lethe.data.models import ControlRecord, bind_models
from lethe.data.writes import get_or_none, update_if
from lethe.domain import utc_now
from lethe.errors import RateLimited
from lethe.settings import get_settings

WINDOW = timedelta(hours=1)


def _window(now: datetime) -> tuple[str, datetime]:
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.strftime("%Y-%m-%dT%H"), start + WINDOW


def hit(kind: str, ref: str, *, limit: int, now: datetime | None = None, token: str | None = None) -> int:
    """Count one submission for `ref` (an HMAC) in the current hour. Raises RateLimited, with the
    seconds until the window ends, once the count goes over `limit`. Returns the count.

    With a `token` (a digest naming the submission), the same submission is counted once however often
    it is attempted: a retry after a server-side failure does not use up the subject's allowance. At
    most `limit` tokens are kept per window, so the counter item stays small."""
    settings = get_settings()
    if ControlRecord.Meta.table_name != settings.control_table:
        bind_models(settings)
    moment = utc_now(now)
    window, ends = _window(moment)
    counter = ControlRecord(f"RATE#{kind}#{ref}", window)
    actions: list[Any] = [ControlRecord.tally.add(1), ControlRecord.expires_at.set(int(ends.timestamp()) + 3600)]
    if token is None:
        counter.update(actions=actions)
        count = int(counter.tally or 0)
    elif update_if(
        counter,
        [*actions, ControlRecord.seen.add({token})],
        ~ControlRecord.seen.contains(token) & (ControlRecord.tally.does_not_exist() | (ControlRecord.tally < limit)),
    ):
        count = int(counter.tally or 0)
    else:
        current = get_or_none(ControlRecord, f"RATE#{kind}#{ref}", window)
        counted_before = current is not None and token in (current.seen or set())
        count = int(current.tally or 0) if current is not None and counted_before else limit + 1
    if count > limit:
        retry_after = max(1, int((ends - moment).total_seconds()))
        raise RateLimited("too many requests; try again later", retry_after=retry_after)
    return count

"""The retention index, kept up by Lethe from each indexed dataset table's DynamoDB stream.

A service that writes its own table does not know Lethe: it may write an item without
`expiry_bucket`/`expires_on`, or move its `since` later (a `last_active_at` on every login). Each
stream record (NEW_AND_OLD_IMAGES) is checked here, and an item whose expiry attributes are missing
or no longer true is re-filed by one conditional UpdateItem (on `since` still holding the value the
record shows). An item whose attributes are already right costs no write; Lethe's own re-file comes
back on the stream with the right attributes, so it is not written again (no loop).

An item that arrives already past due (a backfill, an import) is filed under the day of the
dataset's sweep watermark, not under its true (past) day: the next sweep reads that day's buckets
whatever its overlap window, and its `expires_on` stays true.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from lethe.data import sweeps
from lethe.data.datasets import update_item
from lethe.data.expiry import (
    ANONYMIZED_ATTRIBUTE,
    BUCKET_ATTRIBUTE,
    EXPIRES_ATTRIBUTE,
    bucket,
    expiry_attributes,
    shard_of,
)
from lethe.inventory import Dataset, get_inventory
from lethe.settings import get_settings

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
Outcome = Literal["refiled", "unchanged", "conflict", "ignored"]


@dataclass(frozen=True)
class Refile:
    """The expiry attributes an item must carry."""

    to_set: dict[str, str]


def dataset_for_table(table: str) -> Dataset | None:
    """The inventory dataset stored in this physical table, if any."""
    settings = get_settings()
    return next((d for d in get_inventory().datasets.values() if settings.table_name(d.table) == table), None)


def table_of_stream(stream_arn: str) -> str:
    """arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label> -> <name>."""
    try:
        return stream_arn.split(":table/", 1)[1].split("/stream/", 1)[0]
    except IndexError:
        raise ValueError("not a DynamoDB stream ARN") from None


def desired(dataset: Dataset, item: dict[str, Any], watermark: date | None) -> Refile | None:
    """What the item's expiry attributes must be: its true expiry, in the bucket of its expiry day or,
    when that day was already swept, of the watermark day. None when it needs none (no since)."""
    rule = dataset.retention
    if rule is None or rule.index is None or item.get(ANONYMIZED_ATTRIBUTE) is not None:
        return None
    true = expiry_attributes(dataset, item)
    if not true:
        return None
    expires = true[EXPIRES_ATTRIBUTE]
    day = date.fromisoformat(expires[:10])
    if watermark is not None and day < watermark:
        day = watermark
    return Refile(
        {BUCKET_ATTRIBUTE: bucket(day.isoformat(), shard_of(dataset, item, rule.shards)), EXPIRES_ATTRIBUTE: expires}
    )


def needed(
    dataset: Dataset,
    event: EventName,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    watermark: date | None,
) -> Refile | None:
    """The write a stream record calls for, or None. A new item must carry the attributes it would
    be swept by; a changed one is re-filed when its attributes are missing or its expiry moved, never
    because something else about it changed."""
    if event == "REMOVE" or not new or dataset.retention is None:
        return None
    want = desired(dataset, new, watermark)
    if want is None:
        return None
    have_bucket, have_expires = new.get(BUCKET_ATTRIBUTE), new.get(EXPIRES_ATTRIBUTE)
    if have_bucket is None or have_expires != want.to_set[EXPIRES_ATTRIBUTE]:
        return want
    since = dataset.retention.since
    since_moved = old is not None and old.get(since) != new.get(since)
    if (event == "INSERT" or since_moved) and have_bucket != want.to_set[BUCKET_ATTRIBUTE]:
        return want
    return None


def apply(dataset: Dataset, item: dict[str, Any], refile: Refile) -> bool:
    """One conditional UpdateItem: only if `since` still holds the value the record showed (a later
    change brings its own record). False when it no longer did, and nothing was written."""
    assert dataset.retention is not None
    since = dataset.retention.since
    return update_item(
        dataset,
        item,
        to_set=refile.to_set,
        condition_attribute=since,
        condition_value=item[since],
    )


class Watermarks:
    """The sweep watermark of each dataset, read once per batch."""

    def __init__(self) -> None:
        self._seen: dict[str, date | None] = {}

    def of(self, dataset: Dataset) -> date | None:
        if dataset.name not in self._seen:
            day = sweeps.watermark(dataset.name)
            self._seen[dataset.name] = date.fromisoformat(day) if day else None
        return self._seen[dataset.name]


def maintain(
    dataset: Dataset,
    event: EventName,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    watermarks: Watermarks,
) -> Outcome:
    """Keep one item's expiry attributes true, as one stream record shows it."""
    if dataset.retention is None or dataset.retention.index is None:
        return "ignored"
    refile = needed(dataset, event, old, new, watermarks.of(dataset))
    if refile is None or new is None:
        return "unchanged"
    return "refiled" if apply(dataset, new, refile) else "conflict"

"""Expiry attributes for datasets with a retention index.

An item due at `expires_on` carries `expiry_bucket` = "<YYYY-MM-DD of expires_on>#<shard>", a sparse
GSI key: the sweep queries the buckets of each due day, so its cost follows the expired items,
not the table size. The shard spreads one day's writes over several partitions.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from lethe.inventory import Dataset

BUCKET_ATTRIBUTE = "expiry_bucket"
EXPIRES_ATTRIBUTE = "expires_on"
# Set by a retention anonymization, whose item then leaves the index for good.
ANONYMIZED_ATTRIBUTE = "lethe_anonymized_at"


def parse_instant(value: Any) -> datetime | None:
    """`since` may hold an ISO 8601 timestamp or epoch seconds."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (hasattr(value, "is_integer") and not isinstance(value, str)):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(text), tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def shard_of(dataset: Dataset, item: dict[str, Any], shards: int) -> int:
    key_attrs = dataset.key.attributes if dataset.key else (dataset.subject.attribute,)
    key = "|".join(str(item.get(a, "")) for a in key_attrs)
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % shards


def bucket(day: str, shard: int) -> str:
    return f"{day}#{shard}"


def expiry_attributes(dataset: Dataset, item: dict[str, Any]) -> dict[str, str]:
    """The attributes a service writes with an item so the retention index finds it when due."""
    rule = dataset.retention
    if rule is None or rule.index is None:
        return {}
    since = parse_instant(item.get(rule.since))
    if since is None:
        return {}
    expires = rule.after.after(since).astimezone(UTC)
    return {
        BUCKET_ATTRIBUTE: bucket(expires.date().isoformat(), shard_of(dataset, item, rule.shards)),
        EXPIRES_ATTRIBUTE: expires.isoformat(),
    }

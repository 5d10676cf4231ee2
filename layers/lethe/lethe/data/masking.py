"""Field masking: what each erase strategy of the inventory does to one value.

Pure functions, shared by erasure (fulfilment) and the retention sweep. `anonymize` returns the
attributes to SET and the attributes to REMOVE; the caller writes them in one conditional UpdateItem.

`pseudonymize` is never keyed by Lethe's long-lived keys: whoever holds those could recompute the
pseudonym from the email and re-link the row. An erasure uses a `RequestKey`, made for that request
and destroyed when it ends (the same value gets the same pseudonym within the request, so rows stay
consistent while it runs); the retention sweep uses `UNLINKABLE`, a fresh random token per value.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from lethe.inventory import Dataset, EraseStrategy

REDACTED = "[redacted]"
Granularity = Literal["month", "year"]


def truncate_ip(value: Any) -> str:
    """IPv4 keeps its /24 ("a.b.c.0"), IPv6 its /48. Anything that is not an address is redacted."""
    text = str(value).strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return REDACTED
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


def coarsen_date(value: Any, granularity: Granularity = "month") -> Any:
    """The first of the month (or of the year), in the value's own shape: epoch seconds stay
    numbers, a date stays a date, a timestamp stays a timestamp at midnight. Unreadable → redacted."""
    if isinstance(value, bool):
        return REDACTED
    if isinstance(value, int | float | Decimal):
        moment = datetime.fromtimestamp(float(value), tz=UTC)
        first = _first(moment, granularity)
        return type(value)(int(first.timestamp())) if not isinstance(value, float) else first.timestamp()
    text = str(value).strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            day = datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            return REDACTED
        return _first(day, granularity).date().isoformat()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return REDACTED
    return _first(moment, granularity).isoformat()


def _first(moment: datetime, granularity: Granularity) -> datetime:
    month = 1 if granularity == "year" else moment.month
    return moment.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def random_token() -> str:
    return "rand:" + secrets.token_hex(16)


class Pseudonymizer(Protocol):
    """What `pseudonymize` needs: one value in, its pseudonym out."""

    def pseudonym(self, value: str) -> str: ...


class RequestKey:
    """Pseudonyms under a key of one request: stable while the request runs, beyond anyone's reach
    once the key is destroyed with the request (lethe.data.requests.erasure_key)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a request key has at least 32 bytes")
        self._key = key

    def pseudonym(self, value: str) -> str:
        return "pseud:" + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]


class _Unlinkable:
    """A random token per value: nothing, not even the same value elsewhere, links it back."""

    def pseudonym(self, value: str) -> str:
        return "anon:" + secrets.token_hex(16)


UNLINKABLE: Pseudonymizer = _Unlinkable()


def mask_value(strategy: EraseStrategy, value: Any, ring: Pseudonymizer) -> Any | None:
    """The masked value, or None when the strategy removes the attribute."""
    if strategy is EraseStrategy.remove:
        return None
    if strategy is EraseStrategy.redact:
        return REDACTED
    if strategy is EraseStrategy.pseudonymize:
        return ring.pseudonym(str(value))
    if strategy is EraseStrategy.random:
        return random_token()
    if strategy is EraseStrategy.truncate_ip:
        return truncate_ip(value)
    if strategy is EraseStrategy.coarsen_date:
        return coarsen_date(value)
    raise ValueError(f"unknown erase strategy {strategy!r}")


def anonymize(
    dataset: Dataset, item: dict[str, Any], ring: Pseudonymizer, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    """(attributes to SET, attributes to REMOVE) for the dataset's fields present on the item.
    Fields the item lacks (optional fields) are left alone. `now` is the moment of the masking;
    the strategies themselves do not depend on it."""
    del now  # part of the stable signature: a strategy may one day depend on the time (e.g. ages)
    to_set: dict[str, Any] = {}
    to_remove: list[str] = []
    for name, spec in dataset.fields.items():
        if name not in item or item[name] is None:
            continue
        masked = mask_value(spec.erase, item[name], ring)
        if masked is None:
            to_remove.append(name)
        else:
            to_set[name] = masked
    return to_set, to_remove

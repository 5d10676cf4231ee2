"""Identities and links: how fulfilment reaches datasets that do not hold the subject's email.

A request starts from the email it was verified by (round 1). A dataset's `links` name attributes
that hold another identity of the same person (the account id); the values its items carry are
recorded before the task writes anything (so a redelivered or retried task that no longer finds the
items, because it already masked them, still knows what they linked to). When a round's last task
is done, fulfilment opens the next round for the datasets found by the newly learned identities,
until nothing new is learned. A value is followed once, so cycles end.

Raw linked values live only in the request's own partition (the summary row and LINKS# rows), as
the email does: never in the audit, the logs or a task result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from lethe.data import datasets
from lethe.data.models import RequestEventRecord
from lethe.data.requests import DataSubjectRequest, pk_of
from lethe.inventory import EMAIL, Dataset, Inventory
from lethe.keys import normalize_email

logger = Logger(child=True)

ROUND_MARK = "@"
LINKS_PREFIX = "LINKS#"
LINKS_KIND = "identity_links"

Value = str | int


def task_name(dataset: str, round_: int) -> str:
    """A dataset's task in a round: the dataset's own name in round 1, `<dataset>@<round>` after."""
    return dataset if round_ == 1 else f"{dataset}{ROUND_MARK}{round_}"


def parse_task(name: str) -> tuple[str, int]:
    dataset, _, number = name.partition(ROUND_MARK)
    return dataset, int(number) if number.isdigit() else 1


def first_round(inventory: Inventory, request: DataSubjectRequest | None = None) -> list[str]:
    """Datasets found by the email, or by an identity the request came with (round 1)."""
    given = {EMAIL} | {i for i, _, r in (request.identities if request else ()) if r == 1}
    return sorted(name for name, d in inventory.datasets.items() if d.subject.identity in given)


def values_for(request: DataSubjectRequest, identity: str, round_: int | None) -> list[Value]:
    """The values of `identity` a task of `round_` looks up (None: every value known)."""
    values: list[Value] = []
    if identity == EMAIL and round_ in (1, None) and request.email:
        values.append(request.email)
    values += [v for i, v, r in request.identities if i == identity and (round_ is None or r == round_)]
    if identity == EMAIL:
        # The address as given and as normalized: items may hold either.
        values = [variant for v in values for variant in datasets.email_variants(str(v))]
    return list(dict.fromkeys(values))


def _plain(value: Any) -> Value | None:
    """A linked value usable as a key: a string or an integral number. Anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return None


class Lookup:
    """One task's reach: the subject's items in one dataset for this round's values of its identity,
    and the identities those items link to."""

    def __init__(self, request: DataSubjectRequest, dataset: Dataset, inventory: Inventory, round_: int) -> None:
        self.request = request
        self.dataset = dataset
        self.inventory = inventory
        self.round = round_
        self.task = task_name(dataset.name, round_)
        self.values = values_for(request, dataset.subject.identity, round_)
        self.learned: dict[str, set[Value]] = {}

    def items(self) -> Iterator[dict[str, Any]]:
        if not self.values:
            return
        for item in self._records():
            self._collect(item)
            yield item

    def _records(self) -> Iterator[dict[str, Any]]:
        from lethe.data import stores

        return stores.store_for(self.dataset).read(self.dataset, self.values)

    def _collect(self, item: dict[str, Any]) -> None:
        for identity, attribute in self.dataset.links.items():
            raw = item.get(attribute)
            if raw is None:
                continue
            value = _plain(raw)
            if value is None:
                # Names only: the value itself may be personal data.
                logger.warning(
                    "identity link skipped: not a string or an integral number",
                    dataset=self.dataset.name,
                    attribute=attribute,
                )
                continue
            if identity == EMAIL:
                value = normalize_email(str(value))
            if not self.inventory.identity(identity).accepts(value):
                logger.warning(
                    "identity link skipped: fails the identity's format check",
                    dataset=self.dataset.name,
                    attribute=attribute,
                    identity=identity,
                )
                continue
            self.learned.setdefault(identity, set()).add(value)

    def persist(self) -> dict[str, int]:
        """Record what this task learned, merged with what an earlier delivery of it recorded, before
        the task writes anything. Returns the count of values per identity (for the audit)."""
        key = (pk_of(self.request.request_id), f"{LINKS_PREFIX}{self.task}")
        merged = {identity: set(values) for identity, values in self.learned.items()}
        for row in RequestEventRecord.query(key[0], RequestEventRecord.sk == key[1], consistent_read=True):
            for identity, value in (row.detail or {}).get("links", []):
                merged.setdefault(identity, set()).add(value)
        if merged:
            RequestEventRecord(
                *key,
                at=datetime.now(UTC).isoformat(timespec="seconds"),
                kind=LINKS_KIND,
                actor="system",
                detail={"links": sorted(([i, v] for i, vs in merged.items() for v in vs), key=str)},
            ).save()
        return {identity: len(values) for identity, values in sorted(merged.items())}


def learned_links(request_id: str) -> Iterator[tuple[str, Value]]:
    for row in RequestEventRecord.query(
        pk_of(request_id), RequestEventRecord.sk.startswith(LINKS_PREFIX), consistent_read=True
    ):
        for identity, value in (row.detail or {}).get("links", []):
            yield str(identity), value


def newly_learned(request: DataSubjectRequest, inventory: Inventory) -> list[tuple[str, Value]]:
    """Identities the request's tasks learned that it has not followed yet, for identities that
    some dataset is found by (sorted, so every delivery computes the same next round)."""
    keyed_by = {d.subject.identity for d in inventory.datasets.values()}
    known = {(i, v) for i, v, _ in request.identities}
    if request.email:
        known.add((EMAIL, normalize_email(request.email)))
    fresh = {(i, v) for i, v in learned_links(request.request_id) if i in keyed_by and (i, v) not in known}
    return sorted(fresh, key=str)


def forget_links(request_id: str) -> None:
    """Drop the LINKS# rows once the request no longer needs them (after an erasure)."""
    for row in RequestEventRecord.query(pk_of(request_id), RequestEventRecord.sk.startswith(LINKS_PREFIX)):
        row.delete()


def counts(entries: Iterable[tuple[str, Value, int]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for identity, _, _ in entries:
        found[identity] = found.get(identity, 0) + 1
    return found

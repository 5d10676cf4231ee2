"""The dataset store seam: what fulfilment and the proof of erasure ask of any store that holds a
subject's records (DESIGN.md, "Stores").

- `find`: where the subject's records are (item keys, or object keys), without reading them all;
- `read`: the records themselves;
- `mask`: mask the subject's records in place (the dataset's field strategies);
- `delete`: delete them;
- `remaining`: read again after an erasure, for the proof;
- `sweep_due`: rewrite the records whose retention has passed (stores whose records live inside
  larger units, such as rows in objects; a table's sweep is the index/scan path of logic.retention).

The logic deciding what to do (legal holds, the dataset's action, the pseudonym key) is shared in
lethe.logic.fulfilment_work; a store only carries it out. `store_for` picks the store of a dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

from lethe.aws import retried
from lethe.data import datasets, ledger, s3store
from lethe.data.masking import Pseudonymizer, anonymize
from lethe.inventory import Dataset
from lethe.keys import KeyRing, key_ring

Record = dict[str, Any]
Value = str | int


# What a mask, delete or sweep did: counts, and rows kept because they did not parse (per object).
Outcome = s3store.StoreOutcome


class DatasetStore(Protocol):
    def find(self, dataset: Dataset, values: list[Value]) -> list[str]: ...

    def read(self, dataset: Dataset, values: list[Value], *, consistent: bool = False) -> Iterator[Record]: ...

    def mask(
        self,
        dataset: Dataset,
        values: list[Value],
        records: list[Record],
        ring: Pseudonymizer,
        now: datetime,
        *,
        erased: ledger.Erasure | None,
    ) -> Outcome: ...

    def delete(
        self, dataset: Dataset, values: list[Value], records: list[Record], *, erased: ledger.Erasure | None
    ) -> Outcome: ...

    def remaining(self, dataset: Dataset, values: list[Value]) -> int: ...


class RowSweeper(Protocol):
    def sweep_due(
        self, dataset: Dataset, due: Callable[[Record], bool], mask: Callable[[Record], Record] | None, *, apply: bool
    ) -> Outcome: ...


class DynamoDBStore:
    """A dataset table: found by Query on its subject index or key, written item by item, conditionally."""

    def find(self, dataset: Dataset, values: list[Value]) -> list[str]:
        return [str(datasets.key_of(dataset, item)) for item in datasets.items_for_identity(dataset, values)]

    def read(self, dataset: Dataset, values: list[Value], *, consistent: bool = False) -> Iterator[Record]:
        return datasets.items_for_identity(dataset, values, consistent=consistent)

    def mask(
        self,
        dataset: Dataset,
        values: list[Value],
        records: list[Record],
        ring: Pseudonymizer,
        now: datetime,
        *,
        erased: ledger.Erasure | None,
    ) -> Outcome:
        outcome = Outcome()
        attribute = dataset.subject.attribute
        for item in records:
            outcome.found += 1
            done = datasets.anonymize_item(
                dataset,
                item,
                ring,
                now,
                condition_attribute=attribute,
                condition_value=item[attribute],
                erased=erased,
            )
            if done:
                outcome.anonymized += 1
            else:
                outcome.unchanged += 1
        return outcome

    def delete(
        self, dataset: Dataset, values: list[Value], records: list[Record], *, erased: ledger.Erasure | None
    ) -> Outcome:
        keys = [datasets.key_of(dataset, item) for item in records]
        return Outcome(found=len(keys), deleted=datasets.delete_items(dataset, keys, erased=erased))

    def remaining(self, dataset: Dataset, values: list[Value]) -> int:
        return sum(1 for _ in datasets.items_for_identity(dataset, values, consistent=True))


def masked_row(dataset: Dataset, ring: Pseudonymizer, now: datetime) -> Callable[[Record], Record]:
    """A row with the dataset's fields masked by their strategies (a removed field goes)."""

    def mask(record: Record) -> Record:
        to_set, to_remove = anonymize(dataset, record, ring, now)
        kept = {name: value for name, value in record.items() if name not in to_remove}
        return {**kept, **to_set}

    return mask


def _object_ledger(dataset: Dataset, outcome: s3store.StoreOutcome, action: str, erased: ledger.Erasure | None) -> None:
    """The erasure ledger learns each object rewritten for the subject (its key as the item key)."""
    rewritten = [{"object_key": key} for key in outcome.rows_by_object]
    ledger.record_erased(dataset, rewritten, lambda _d, row: row, action=action, erasure=erased)


class S3Store:
    """Rows inside the objects of a versioned bucket, found through Lethe's own subject index."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def find(self, dataset: Dataset, values: list[Value]) -> list[str]:
        return s3store.indexed_objects(dataset, values, self.ring)

    def read(self, dataset: Dataset, values: list[Value], *, consistent: bool = False) -> Iterator[Record]:
        # S3 reads after writes are strongly consistent: `consistent` needs nothing more.
        return s3store.rows_for_subject(dataset, list(values), self.ring)

    def mask(
        self,
        dataset: Dataset,
        values: list[Value],
        records: list[Record],
        ring: Pseudonymizer,
        now: datetime,
        *,
        erased: ledger.Erasure | None,
    ) -> Outcome:
        done = s3store.erase_subject(dataset, list(values), self.ring, mask=masked_row(dataset, ring, now), now=now)
        _object_ledger(dataset, done, "anonymize", erased)
        return done

    def delete(
        self, dataset: Dataset, values: list[Value], records: list[Record], *, erased: ledger.Erasure | None
    ) -> Outcome:
        from datetime import UTC

        done = s3store.erase_subject(dataset, list(values), self.ring, mask=None, now=datetime.now(UTC))
        _object_ledger(dataset, done, "delete", erased)
        return done

    def remaining(self, dataset: Dataset, values: list[Value]) -> int:
        return s3store.remaining(dataset, list(values), self.ring)

    def sweep_due(
        self, dataset: Dataset, due: Callable[[Record], bool], mask: Callable[[Record], Record] | None, *, apply: bool
    ) -> Outcome:
        def decide(record: Record) -> Record | bool:
            if not due(record):
                return False
            return True if mask is None else mask(record)

        return s3store.sweep(dataset, decide, apply=apply)


def store_for(dataset: Dataset, ring: KeyRing | None = None) -> DatasetStore:
    """The store a dataset lives in (an S3 store needs the key ring: its index is keyed by HMACs)."""
    if dataset.in_s3:
        return S3Store(ring or key_ring())
    return DynamoDBStore()


@retried("erasure proof read")
def remaining(dataset: Dataset, values: list[Value]) -> int:
    """How many live records of `dataset` still hold one of `values`, read again for the proof of
    erasure (consistently where the store can); retried in place on a transient error."""
    return store_for(dataset).remaining(dataset, values)

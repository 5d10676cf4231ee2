"""A faster TransactWriteItems for moto, the local stack's AWS.

moto snapshots every table a transaction touches with a deep copy of the whole table, to roll back
if any part fails. Every request transition writes the audit table in a transaction, so on a stack
that runs for a while each transition costs time in proportion to the whole audit. This keeps
moto's behaviour and outcome (all or nothing) but snapshots only the items the transaction names.
"""

from __future__ import annotations

import copy
from typing import Any

_Snapshot = tuple[Any, Any, Any, Any]  # table, hash key, range key, the item as it was (or None)


def install() -> None:
    """Patch moto's DynamoDB backend once per process."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "lethe_item_snapshots", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        touched = _snapshot(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            _restore(touched)
            raise

    transact_write_items.lethe_item_snapshots = True  # type: ignore[attr-defined]
    # moto's own whole-table snapshot (copy.deepcopy(table)) becomes the table itself: its
    # "rollback" puts the same table back, and _restore undoes the items.
    Table.__deepcopy__ = lambda self, memo: self  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[_Snapshot]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    touched: list[_Snapshot] = []
    for entry in transact_items:
        if len(entry) != 1:
            continue  # moto refuses it before changing anything
        (op,) = entry.values()
        table = backend.tables.get(op.get("TableName"))
        attributes = op.get("Key") or op.get("Item") or {}
        if table is None or table.hash_key_attr not in attributes:
            continue
        hash_key = DynamoType(attributes[table.hash_key_attr])
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in attributes:
                continue
            range_key = DynamoType(attributes[table.range_key_attr])
        touched.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return touched


def _restore(touched: list[_Snapshot]) -> None:
    for table, hash_key, range_key, item in reversed(touched):
        if item is None:
            table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item

"""A faster TransactWriteItems for moto, the local stack's AWS.

moto snapshots every table a transaction touches with a deep copy of the whole table, to roll back
if any part fails. Every request transition writes the audit table in a transaction, so on a stack
that runs for a while each transition costs time in proportion to the whole audit. This keeps
moto's behaviour and outcome (all or nothing) but snapshots only the items the transaction names.
Only the local stack installs it; the tests run on stock moto.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

_Snapshot = tuple[Any, Any, Any, Any]  # table, hash key, range key, the item as it was (or None)
# Set while this thread runs a transaction: only then is a table's deep copy the table itself, so a
# backup (CreateBackup deep-copies the table too) stays a real copy.
_in_transaction = threading.local()
_original: dict[str, Any] = {}


def install() -> None:
    """Patch moto's DynamoDB backend once per process."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if _original:
        return
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        touched = _snapshot(self, transact_items)
        _in_transaction.active = True
        try:
            original(self, transact_items)
        except Exception:
            _restore(touched)
            raise
        finally:
            _in_transaction.active = False

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        # Within a transaction moto's whole-table snapshot becomes the table itself: its "rollback"
        # puts the same table back, and _restore undoes the items. Elsewhere, copy.deepcopy as usual.
        if getattr(_in_transaction, "active", False):
            return self
        return copy._reconstruct(self, memo, *self.__reduce_ex__(4))  # type: ignore[attr-defined]

    _original["transact_write_items"] = original
    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def uninstall() -> None:
    """Put moto back as it was (tests that check the patch use it)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if not _original:
        return
    DynamoDBBackend.transact_write_items = _original.pop("transact_write_items")  # type: ignore[method-assign]
    del Table.__deepcopy__  # type: ignore[attr-defined]


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

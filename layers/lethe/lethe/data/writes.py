"""Conditional reads and writes of Lethe's own tables, answered as values: logic asks whether a
record exists or a condition held, and never handles pynamodb's or botocore's exceptions itself.
Any other failure (throttling past the SDK's retries, a missing table) propagates unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, PynamoDBException, UpdateError
from pynamodb.models import Model

from lethe.aws import error_code

M = TypeVar("M", bound=Model)

REFUSED = "ConditionalCheckFailedException"


def refused(exc: BaseException) -> bool:
    """Whether `exc` is a write whose condition did not hold (rather than a fault)."""
    return error_code(exc) == REFUSED


def get_or_none(model: type[M], hash_key: str, range_key: str | None = None) -> M | None:
    """The record, read consistently, or None when there is none."""
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except DoesNotExist:
        return None


def _unless_refused(write: Callable[[], Any], failure: type[PynamoDBException]) -> bool:
    """Run a conditional write: True when it was made, False when its condition did not hold."""
    try:
        write()
    except failure as exc:
        if refused(exc):
            return False
        raise
    return True


def save_if(record: Model, condition: Any) -> bool:
    """Put `record` when `condition` holds; False when it did not (nothing was written)."""
    return _unless_refused(lambda: record.save(condition=condition), PutError)


def update_if(record: Model, actions: list[Any], condition: Any) -> bool:
    """Apply `actions` to `record` when `condition` holds (the record is refreshed from the answer);
    False when it did not (nothing was written)."""
    return _unless_refused(lambda: record.update(actions=actions, condition=condition), UpdateError)


def delete_if(record: Model, condition: Any) -> bool:
    """Delete `record` when `condition` holds; False when it did not."""
    return _unless_refused(lambda: record.delete(condition=condition), DeleteError)

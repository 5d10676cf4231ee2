"""Which event source a function's AWS call gives work, so only that poller is woken.

Every AWS call made in the stack's process (the functions' own, through moto's in-process mock) passes
botocore's events. A send to SQS wakes the queue poller; a write to a table the stream poller reads wakes
it; a write to a bucket an S3 dataset lives in wakes the object poller. A read wakes nothing: a fuzzer's
dozens of GETs a second used to start a round of every queue, shard and prefix each.

The wakeup is set after the call has returned, so a round it starts reads what the call wrote. The
handlers are added to botocore's built-in ones (as moto adds its own), so every session created after
`install()` carries them; the stack installs them before it creates any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import botocore.handlers

from lethe_local.poller import Wakeup

SQS_SENDS = frozenset({"SendMessage", "SendMessageBatch"})
TABLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
OBJECT_WRITES = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload"})
_WRITTEN = "lethe_local_written"  # the request context's key for what the call's parameters name


def tables_written(operation: str, params: dict[str, Any]) -> set[str]:
    """The tables a DynamoDB write names."""
    if operation == "BatchWriteItem":
        return set(params.get("RequestItems") or {})
    if operation == "TransactWriteItems":
        return {
            action["TableName"]
            for item in params.get("TransactItems") or []
            for kind, action in item.items()
            if kind != "ConditionCheck" and isinstance(action, dict) and "TableName" in action
        }
    return {params["TableName"]} if operation in TABLE_WRITES and "TableName" in params else set()


class WriteWatch:
    """The wakeups of the three pollers, set by the writes that give each of them work."""

    def __init__(
        self,
        *,
        stream_tables: Callable[[], Iterable[str]] = frozenset,
        object_buckets: Callable[[], Iterable[str]] = frozenset,
    ) -> None:
        self.queues, self.streams, self.objects = Wakeup(), Wakeup(), Wakeup()
        self.stream_tables, self.object_buckets = stream_tables, object_buckets

    def install(self) -> None:
        botocore.handlers.BUILTIN_HANDLERS.extend([("before-parameter-build", self._note), ("after-call", self._wake)])

    def _note(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        service, operation = model.service_model.service_name, model.name
        if service == "dynamodb" and operation in TABLE_WRITES:
            context[_WRITTEN] = tables_written(operation, params)
        elif service == "s3" and operation in OBJECT_WRITES:
            context[_WRITTEN] = {params.get("Bucket")}

    def _wake(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service, operation = model.service_model.service_name, model.name
        if service == "sqs" and operation in SQS_SENDS:
            self.queues.set()
            return
        written: set[str] = context.get(_WRITTEN, set())
        if not written:  # a read: the inventory is not looked at
            return
        if service == "dynamodb" and not written.isdisjoint(self.stream_tables()):
            self.streams.set()
        elif service == "s3" and not written.isdisjoint(self.object_buckets()):
            self.objects.set()

"""S3 dataset rewrites under faults: a redelivered erasure writes nothing more, a change made by
someone else between Lethe's read and write is kept (the conditional write is refused and the object
read again), and an unversioned bucket is refused naming the dataset."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lethe.domain import RequestType
from tests.support.fulfilment import drain, new_request, unique_email
from tests.support.s3_datasets import (
    NOW,
    Invoke,
    buckets,
    current,
    jsonl_row,
    seed,
)

__all__ = ["buckets"]


def test_redelivered_erasure_applies_once(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.aws import client
    from lethe.logic import fulfilment

    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    jb = buckets["jsonl_bucket"]
    request_id = new_request(RequestType.erasure, me)
    fulfilment.start(request_id)
    kept: list[dict[str, Any]] = []
    assert drain(invoke, keep=kept) == []
    versions = client("s3").list_object_versions(Bucket=jb)["Versions"]
    # When every task is delivered again
    for event in kept:
        invoke("FulfilmentWorkerFunction", event)
    # Then nothing more is written: the same versions, the same rows
    assert client("s3").list_object_versions(Bucket=jb)["Versions"] == versions
    # and the dataset task itself, run again directly, finds nothing left to change
    from lethe.data import s3store
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring

    again = s3store.erase_subject(get_inventory().dataset("chat_logs"), [me], key_ring(), mask=None, now=NOW)
    assert (again.found, again.deleted, again.objects_rewritten) == (0, 0, 0)


def test_a_concurrent_change_is_not_overwritten(invoke: Invoke, buckets: dict[str, str]) -> None:
    import boto3

    from lethe.aws import client
    from lethe.data import s3store
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring

    me, others = unique_email("me"), [unique_email("a"), unique_email("b")]
    seed(invoke, buckets, me, others)
    jb = buckets["jsonl_bucket"]
    late = unique_email("late")
    writer = boto3.client("s3", region_name="us-east-1")
    s3 = client("s3")
    fired: list[str] = []

    def someone_writes_first(params: dict[str, Any], **_: Any) -> None:
        # Between Lethe's read and its write, the service appends a row to the object.
        if params.get("Key") == "logs/1.jsonl" and not fired:
            fired.append("x")
            body = current(jb, "logs/1.jsonl") + (json.dumps(jsonl_row(late, "just now")) + "\n").encode()
            writer.put_object(Bucket=jb, Key="logs/1.jsonl", Body=body)

    s3.meta.events.register("before-parameter-build.s3.PutObject", someone_writes_first)
    try:
        done = s3store.erase_subject(get_inventory().dataset("chat_logs"), [me], key_ring(), mask=None, now=NOW)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.PutObject", someone_writes_first)
    # Then the conditional write was refused, the object read again, and the late row kept
    assert fired == ["x"]
    body = current(jb, "logs/1.jsonl").decode()
    assert late in body
    assert me not in body.lower()
    assert others[0] in body
    assert done.deleted == 2


def test_an_unversioned_bucket_is_refused_naming_the_dataset(invoke: Invoke, buckets: dict[str, str]) -> None:
    from lethe.aws import client
    from lethe.data import s3store
    from lethe.errors import ConfigurationError
    from lethe.inventory import get_inventory

    client("s3").put_bucket_versioning(Bucket=buckets["csv_bucket"], VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(ConfigurationError, match=r"dataset chat_sheets: bucket .* is not versioned"):
        s3store.require_versioning(get_inventory().dataset("chat_sheets"))

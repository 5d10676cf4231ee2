"""The proof of erasure on S3 datasets reads every version of the subject's objects: a row left in a
noncurrent version counts as remaining (a restore would bring it back), and a residue fails the
request instead of certifying it."""

from __future__ import annotations

import pytest

from lethe.domain import RequestType, Status
from tests.support.fulfilment import unique_email
from tests.support.s3_datasets import INDEXER, Invoke, buckets, jsonl_row, object_created, put_jsonl, run

__all__ = ["buckets"]


def test_a_row_left_in_an_old_version_is_remaining_and_fails_the_erasure(
    invoke: Invoke, buckets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.data import s3store, stores
    from lethe.inventory import get_inventory
    from lethe.keys import key_ring
    from lethe.logic.requests import get_request

    me, other = unique_email("me"), unique_email("other")
    jb = buckets["jsonl_bucket"]
    store = stores.S3Store(key_ring())
    logs = get_inventory().dataset("chat_logs")
    # Given an object holding the subject, indexed, then overwritten by the service without them
    put_jsonl(jb, "logs/p.jsonl", [jsonl_row(me, "my address"), jsonl_row(other, "hi")])
    invoke(INDEXER, object_created(jb, "logs/p.jsonl"))
    put_jsonl(jb, "logs/p.jsonl", [jsonl_row(other, "hi")])
    # Then the proof still finds the row, in the noncurrent version
    assert store.remaining(logs, [me]) == 1
    # When the erasure's pass cannot delete old versions (as if it failed before that step)
    monkeypatch.setattr(s3store, "purge_versions", lambda *args, **kwargs: 0)
    request_id = run(invoke, RequestType.erasure, me)
    # Then the request is not certified: it fails, naming the dataset
    request = get_request(request_id)
    assert request.status is Status.failed
    assert request.datasets_failed == {"chat_logs"}
    # And once old versions are deleted again (the real step), nothing remains
    monkeypatch.undo()
    done = store.delete(logs, [me], [], erased=None)
    assert (done.found, done.versions_deleted) == (0, 1)
    assert store.remaining(logs, [me]) == 0

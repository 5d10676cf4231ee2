"""The `aws` fixture's account: the stack of template.yaml built once per test process, and every test
handed a copy of its own.

Building the stack on moto costs seconds (an RSA key for every KMS key, a certificate, some ninety
API calls); the tests only need its result. So the first test of a process builds it with
`create_stack` and keeps moto's backend state as one pickle; each test then starts a fresh
`mock_aws` (which resets every backend) and loads that pickle into it. Loading makes new objects
for everything, so nothing one test writes reaches another. Two kinds of object are not copied:
`cryptography` key objects, which are immutable and shared, and locks, which are made anew
(one new lock for each old one, so a threading.Condition keeps its own).

This is moto as published: its state is put back as moto itself created it, and its code is
untouched. tests/integration/test_aws_account.py shows a copy equals the account it was taken
from and that writes in one copy are absent from the next.
"""

from __future__ import annotations

import copy
import io
import pickle  # nosec B403 - only our own bytes, pickled in this process, are loaded
import threading
from dataclasses import dataclass
from typing import Any

from moto.core.base_backend import AccountSpecificBackend, BackendDict

from lethe_local.resources import Stack, create_stack

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
_RLOCK = type(threading.RLock())


@dataclass(frozen=True)
class Snapshot:
    """moto's state right after create_stack, and what create_stack returned."""

    blob: bytes
    shared: dict[int, Any]  # objects the pickle refers to, not copies of them
    backends: tuple[tuple[BackendDict[Any], str, str], ...]  # (registry, account, region) of every backend
    bucket_accounts: dict[str, tuple[str, str]]  # moto's S3 bucket namespace, kept beside the backends
    stack: Stack


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, shared: dict[int, Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.shared = shared

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK_TYPES):
            return ("lock", (id(obj), isinstance(obj, _RLOCK)))
        if isinstance(obj, BackendDict | AccountSpecificBackend) or type(obj).__module__.startswith("cryptography."):
            # moto's registries stay the live ones; key objects are immutable.
            self.shared[id(obj)] = obj
            return ("shared", id(obj))
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, shared: dict[int, Any]) -> None:
        super().__init__(file)
        self.shared = shared
        self.locks: dict[int, Any] = {}  # one new lock for each old one, however often it is named

    def persistent_load(self, pid: Any) -> Any:
        kind, value = pid
        if kind == "lock":
            old, reentrant = value
            if old not in self.locks:
                self.locks[old] = threading.RLock() if reentrant else threading.Lock()
            return self.locks[old]
        return self.shared[value]


def take(stack: Stack) -> Snapshot:
    """Keep the state of every moto backend in use (call inside the mock that built `stack`)."""
    from moto.s3.models import s3_backends

    where: list[tuple[BackendDict[Any], str, str]] = []
    state: list[Any] = []
    for registry in BackendDict._instances:
        for account, regional in registry.items():
            for region, backend in dict.items(regional):
                where.append((registry, account, region))
                state.append(backend)
    shared: dict[int, Any] = {}
    buffer = io.BytesIO()
    _Pickler(buffer, shared).dump(state)  # one pickle: what backends share stays shared
    return Snapshot(
        blob=buffer.getvalue(),
        shared=shared,
        backends=tuple(where),
        bucket_accounts=dict(s3_backends.bucket_accounts),
        stack=copy.deepcopy(stack),
    )


def restore(snapshot: Snapshot) -> Stack:
    """Put a new copy of the snapshot's state into moto (call inside a fresh mock_aws)."""
    from moto.s3.models import s3_backends

    state: list[Any] = _Unpickler(io.BytesIO(snapshot.blob), snapshot.shared).load()  # nosec B301
    for (registry, account, region), backend in zip(snapshot.backends, state, strict=True):
        regional = registry[account]  # registers the registry, so leaving the mock resets it
        dict.__setitem__(regional, region, backend)
    s3_backends.bucket_accounts.update(snapshot.bucket_accounts)
    return copy.deepcopy(snapshot.stack)


_built: list[Snapshot] = []


def stack_snapshot() -> Snapshot:
    """The snapshot of this process, built on first use (call outside any mock: it starts its own)."""
    if not _built:
        from moto import mock_aws

        with mock_aws():
            _built.append(take(create_stack()))
        # leaving the mock reset every backend, so only copies of the snapshot are ever used
    return _built[0]

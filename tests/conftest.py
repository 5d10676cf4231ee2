"""Shared fixtures. `aws` gives a moto account with every resource of template.yaml created from
the template itself (built once per process and copied for each test: tests/support/moto_account.py);
`invoke` runs a function's real handler in process."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"

# No test may reach a real AWS account.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="Lethe",
    POWERTOOLS_SERVICE_NAME="lethe",
    POWERTOOLS_DEV="false",
)
os.environ.pop("AWS_ENDPOINT_URL", None)


def reset_process_caches() -> None:
    """Forget everything a cold start would not have: settings, clients, keys, inventory, modules."""
    import gc

    from lethe.aws import reset_clients
    from lethe.inventory import cached_inventory
    from lethe.keys import reset_key_ring
    from lethe.settings import get_settings
    from lethe_local.functions import forget_modules

    gc.unfreeze()  # what a function's INIT froze (lethe.handlers.shell.finish_init) may be collected again
    get_settings.cache_clear()
    cached_inventory.cache_clear()
    reset_clients()
    reset_key_ring()
    _clear_handler_caches()
    forget_modules()


def _clear_handler_caches() -> None:
    """Empty the functools caches of the handler modules. `from lethe.handlers import x` finds a module
    imported before as an attribute of the package, so a cache in it (retention_index remembers each
    stream it has recorded as seen) would outlive the test's account: every copy of the account has the
    same stream ARNs."""
    import sys

    import lethe.handlers

    modules = {id(m): m for m in vars(lethe.handlers).values() if isinstance(m, type(sys))}
    modules.update({id(m): m for n, m in list(sys.modules.items()) if n.startswith("lethe.handlers.")})
    for module in modules.values():
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == module.__name__:
                value.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh moto account holding the stack of template.yaml, with the functions' environment set."""
    from moto import mock_aws

    from lethe.data.models import bind_models
    from lethe.settings import get_settings
    from tests.support.moto_account import restore, stack_snapshot

    snapshot = stack_snapshot()
    with mock_aws():
        stack = restore(snapshot)
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        reset_process_caches()
        bind_models(get_settings())
        yield stack
    reset_process_caches()


@pytest.fixture
def invoke(aws: Any) -> Callable[..., Any]:
    """Run a function's handler in process: invoke("PublicApiFunction", event)."""
    from lethe_local.functions import context_for, handler
    from lethe_local.template import functions, load_template

    specs = functions(load_template())

    def run(logical_id: str, event: dict[str, Any]) -> Any:
        spec = specs[logical_id]
        return handler(spec)(event, context_for(spec))

    return run


@pytest.fixture
def sample_event() -> Callable[[str], dict[str, Any]]:
    def load(name: str) -> dict[str, Any]:
        return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]

    return load


# The order files run in (under xdist, the order they are handed to workers): the longest first, so
# the run does not end waiting on one of them; and e2e last, so the local stacks a worker starts (they
# poll their queues while they live, until the session ends) are not running beside the other tests.
LONGEST_FIRST = (
    "integration/test_fault_injection.py",
    "integration/test_retention_faults.py",
    "e2e/test_fuzz_openapi.py",
    "e2e/test_cli.py",
)
FOLDER_ORDER = ("integration", "unit", "e2e", "benchmarks")


def _run_order(item: pytest.Item) -> tuple[int, int]:
    relative = Path(str(item.fspath)).relative_to(REPO / "tests")
    folder = relative.parts[0] if len(relative.parts) > 1 else ""
    first = relative.as_posix()
    return (
        FOLDER_ORDER.index(folder) if folder in FOLDER_ORDER else len(FOLDER_ORDER),
        LONGEST_FIRST.index(first) if first in LONGEST_FIRST else len(LONGEST_FIRST),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked by the folder it lives in (unit, integration, e2e, benchmarks); files run
    in the order above, each file's tests in their own order."""
    items.sort(key=_run_order)  # stable: a file's tests stay together and in order
    marks = {
        "unit": pytest.mark.unit,
        "integration": pytest.mark.integration,
        "e2e": pytest.mark.e2e,
        "benchmarks": pytest.mark.benchmark,
    }
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in marks:
            item.add_marker(marks[parts[0]])

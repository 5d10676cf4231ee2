"""Observe or disturb every AWS call the code makes, through botocore's event hooks.

Clients are created in several places (lethe.aws, pynamodb's connection, Powertools), so the hook
is attached to every client created while the context is open, and the process caches are reset
on entry so no client made earlier escapes it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, ReadTimeoutError

Hook = Callable[..., Any]


def _forget_clients() -> None:
    from lethe.aws import reset_clients
    from lethe.data.models import ALL_MODELS

    reset_clients()
    for models in ALL_MODELS.values():
        for model in models:
            model._connection = None


@contextmanager
def hooked_clients(event: str, hook: Hook) -> Iterator[None]:
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register(event, hook)
        return client

    _forget_clients()
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        _forget_clients()


class CallCounter:
    """Counts API calls per service and operation, e.g. counter["dynamodb.Query"]."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_read = 0

    def before(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.endpoint_prefix}.{model.name}"] += 1

    def after(self, model: Any, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        if parsed and model.name in ("Query", "Scan", "GetItem", "BatchGetItem"):
            if "Items" in parsed:
                self.items_read += len(parsed["Items"])
            elif "Item" in parsed:
                self.items_read += 1
            elif "Responses" in parsed:
                self.items_read += sum(len(v) for v in parsed["Responses"].values())

    def service(self, prefix: str) -> int:
        return sum(n for key, n in self.calls.items() if key.startswith(prefix + "."))


@contextmanager
def counting_calls() -> Iterator[CallCounter]:
    counter = CallCounter()
    with hooked_clients("before-call", counter.before), hooked_clients("after-call", counter.after):
        yield counter


class FaultInjector:
    """Makes a seeded fraction of calls to the chosen services fail as AWS fails: throttling,
    a 500, or a read timeout. The same seed gives the same faults."""

    def __init__(self, rate: float, *, seed: int, services: tuple[str, ...] = ("dynamodb", "s3", "ses")) -> None:
        self.rate, self.services = rate, services
        self.random = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.enabled = True

    def before(self, model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        if not self.enabled or service not in self.services or self.random.random() >= self.rate:
            return
        kind = self.random.choice(("throttle", "server", "timeout"))
        self.injected[f"{service}.{kind}"] += 1
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url=f"https://{service}.local")
        code, status = ("ThrottlingException", 400) if kind == "throttle" else ("InternalServerError", 500)
        if service == "dynamodb" and kind == "throttle":
            code = "ProvisionedThroughputExceededException"
        raise ClientError(
            {"Error": {"Code": code, "Message": "injected fault"}, "ResponseMetadata": {"HTTPStatusCode": status}},
            model.name,
        )


@contextmanager
def injecting_faults(
    rate: float, *, seed: int, services: tuple[str, ...] = ("dynamodb", "s3", "ses")
) -> Iterator[FaultInjector]:
    injector = FaultInjector(rate, seed=seed, services=services)
    with hooked_clients("before-call", injector.before):
        yield injector

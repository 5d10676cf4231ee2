"""What the handler modules share: the INIT every function does and their tracer (the shell of a
scheduled run is lethe.handlers.schedule)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment
from aws_lambda_powertools.utilities.typing import LambdaContext

from lethe.aws import share_session_with_pynamodb
from lethe.data.models import bind_models
from lethe.inventory import get_inventory
from lethe.settings import Settings, get_settings


class _Segment(BaseSegment):
    """A segment that records nothing: what a subsegment is while tracing is off."""

    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(self, exception: BaseException, stack: list[Any], remote: bool = False) -> None:
        return None


class _Off(BaseProvider):
    """The tracing provider while tracing is off. Powertools' default provider is the X-Ray SDK's
    recorder, whose import alone builds a botocore session and an X-Ray client (about as much as
    Lethe's own clients), and which records nothing while tracing is disabled anyway."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _Segment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _Segment()

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None


def make_tracer() -> Tracer:
    """Powertools' Tracer: on X-Ray when the function is traced (Lambda with active tracing), and without
    loading the X-Ray SDK when tracing is off (POWERTOOLS_TRACE_DISABLED, SAM local, tests, the local stack)."""
    if Tracer._is_tracer_disabled():
        return Tracer(disabled=True, auto_patch=False, provider=_Off())
    return Tracer()


def finish_init() -> None:
    """The last step of a function's INIT, which its app.py began by pausing the cyclic garbage collector.
    INIT imports a few hundred modules and builds models, resolvers and clients that live as long as the
    process; collecting while it allocates them only scans them again and again (about a tenth of a cold
    start). They are frozen, so later collections skip them, and collection resumes for the events."""
    gc.freeze()
    gc.enable()


def start_function() -> Settings:
    """The INIT every function shares: the settings read once, every model bound to its table,
    pynamodb's connections sharing Lethe's one botocore session and client, and the inventory loaded
    (the layer's compiled inventory.pickle: no YAML parser, no validators to build)."""
    settings = get_settings()
    bind_models(settings)
    share_session_with_pynamodb()
    get_inventory()
    return settings


def out_of_time(lambda_context: LambdaContext | None, reserve_ms: int) -> Callable[[], bool]:
    """Asks whether less than `reserve_ms` of the invocation is left: a long task stops there, saves
    what it did and queues its continuation. Without a context (a direct call) it never runs out."""

    def check() -> bool:
        return lambda_context is not None and lambda_context.get_remaining_time_in_millis() < reserve_ms

    return check

"""What the handler modules share: their tracer, and the shell of a scheduled (EventBridge) run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


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

"""Loads function modules from functions/<name>/app.py by path, as Lambda would, without sys.path edits."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from lethe_local.template import FunctionSpec

_loaded: dict[str, ModuleType] = {}


def load_module(spec: FunctionSpec, *, fresh: bool = False) -> ModuleType:
    """Import a function's module once (a cold start); `fresh` forces a new cold start."""
    if fresh or spec.logical_id not in _loaded:
        module_spec = importlib.util.spec_from_file_location(f"lethe_fn_{spec.logical_id}", spec.module_path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {spec.module_path}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        _loaded[spec.logical_id] = module
    return _loaded[spec.logical_id]


def handler(spec: FunctionSpec, *, fresh: bool = False) -> Callable[[dict[str, Any], Any], Any]:
    return getattr(load_module(spec, fresh=fresh), spec.handler_name)


def forget_modules() -> None:
    """Forget every loaded function, and the handler modules they import on first use, so the next
    invocation is a cold start again."""
    _loaded.clear()
    for name in [n for n in sys.modules if n.startswith("lethe.handlers.")]:
        del sys.modules[name]


@dataclass
class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def context_for(spec: FunctionSpec) -> LambdaContext:
    return LambdaContext(function_name=spec.logical_id, timeout_ms=spec.timeout * 1000)

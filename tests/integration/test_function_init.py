"""Every function's INIT runs with the cyclic garbage collector paused and ends by freezing what it built
and resuming collection (lethe.handlers.shell.finish_init), so no function serves its events with the
collector off; and
that INIT builds no pydantic validator for a model before an event needs it (lethe.domain.Model)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from lethe_local.functions import load_module
from lethe_local.template import functions, load_template

SPECS = functions(load_template())


@pytest.mark.parametrize("logical_id", sorted(SPECS))
def test_init_pauses_the_collector_and_resumes_it(logical_id: str, aws: Any) -> None:
    # Given a fresh process state: nothing frozen, the collector on
    gc.unfreeze()
    assert gc.isenabled()
    paused_during_init: list[bool] = []
    gc.callbacks.append(lambda phase, info: paused_during_init.append(gc.isenabled()))

    # When the function's app.py is imported, as Lambda's INIT does
    try:
        load_module(SPECS[logical_id], fresh=True)
    finally:
        gc.callbacks.pop()

    # Then INIT froze what it built, and the collector is on again for the events
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()
    # And no collection ran while INIT imported and built (a collection would have called back)
    assert paused_during_init == []


# What a function's INIT validates, so builds: the consent purposes of the inventory.
BUILT_AT_INIT = {"lethe.logic.consent.Purpose"}
BUILT_MODELS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
from lethe.domain import Model
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
models = list(subclasses(Model))
print(json.dumps([len(models), sorted(f"{m.__module__}.{m.__name__}" for m in models if m.__pydantic_complete__)]))
"""


@pytest.mark.parametrize("logical_id", sorted(SPECS))
def test_init_builds_no_validator_for_a_model_it_does_not_use(logical_id: str, aws: Any) -> None:
    # Given a fresh interpreter with the function's environment
    # When it imports the function's app.py, as Lambda's INIT does
    done = subprocess.run(
        [sys.executable, "-c", BUILT_MODELS, str(SPECS[logical_id].module_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    declared, built = json.loads(done.stdout)

    # Then none of the models it declared is built before an event needs it
    assert set(built) <= BUILT_AT_INIT, (declared, built)

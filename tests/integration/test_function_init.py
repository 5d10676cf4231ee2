"""Every function's INIT runs with the cyclic garbage collector paused and ends by freezing what it built
and resuming collection (lethe.handlers.shell.finish_init), so no function serves its events with the
collector off."""

from __future__ import annotations

import gc
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

"""Proof of erasure: after an erasure's writes, every dataset is read again for every identity of the
subject, and what is found is what remains. A certificate states that, not what was planned.

Reads follow every page. A read on the table's key is strongly consistent; a subject index (a GSI)
cannot be, so an item it still shows is read again after a pause (settings) before it counts.
"""

from __future__ import annotations

import time

from lethe.data import stores
from lethe.data.requests import DataSubjectRequest
from lethe.inventory import Dataset, Inventory
from lethe.logic import identities
from lethe.settings import get_settings


def _remaining(dataset: Dataset, values: list[identities.Value]) -> int:
    settings = get_settings()
    attempts = 1 if dataset.subject.index is None else settings.erasure_verify_attempts
    found = 0
    for attempt in range(attempts):
        # A table is read on its key or index (consistently where it can be); an S3 dataset reads every
        # version of every object the subject index names (lethe.data.stores).
        found = stores.remaining(dataset, values)
        if not found or attempt == attempts - 1:
            break
        time.sleep(settings.erasure_verify_delay_seconds)
    return found


def remaining(request: DataSubjectRequest, inventory: Inventory) -> dict[str, int]:
    """Per dataset, how many live items still hold one of the subject's identities."""
    left: dict[str, int] = {}
    for name, dataset in inventory.datasets.items():
        if dataset.is_manual:
            continue  # no API reaches it: its owner's completed task says what was done (lethe.logic.manual_tasks)
        values = identities.values_for(request, dataset.subject.identity, None)
        left[name] = _remaining(dataset, values) if values else 0
    return left

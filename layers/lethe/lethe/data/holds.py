"""Legal hold records in the ControlTable (pk HOLD, sk <hold id>); what a hold means is lethe.logic.legal_holds."""

from __future__ import annotations

from lethe.aws import retried
from lethe.data.models import ControlRecord

PARTITION = "HOLD"


@retried("list holds")
def hold_records() -> list[ControlRecord]:
    """Every hold, placed or lifted, read consistently (one Query on the partition, every page)."""
    return list(ControlRecord.query(PARTITION, consistent_read=True))

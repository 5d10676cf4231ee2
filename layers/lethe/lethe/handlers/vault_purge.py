"""VaultPurgeFunction: deletes isolated records whose purge date has passed and no hold covers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lethe.handlers.schedule import scheduled
from lethe.handlers.shell import start_function
from lethe.logic import vault_purge

logger = Logger()
metrics = Metrics()
start_function()


def run(now: datetime) -> dict[str, Any]:
    summary = vault_purge.purge_due(now)
    metrics.add_metric(name="VaultRecordsPurged", unit=MetricUnit.Count, value=summary.purged)
    metrics.add_metric(name="VaultRecordsKeptUnderHold", unit=MetricUnit.Count, value=summary.kept_under_hold)
    logger.info(
        "vault purge done",
        extra={"purged": summary.purged, "kept_under_hold": summary.kept_under_hold, "days": summary.days},
    )
    return summary.model_dump(mode="json")


handle = scheduled(run)

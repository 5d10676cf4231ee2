"""Routes: replaying the erasure ledger onto a restored table (included by lethe.api.admin).

A replay reads the whole restored table, which can take longer than API Gateway's 29 s: the route
checks the table and starts a job on the ReplayQueue (RestoreReplayFunction runs it), and the job is
read back by its id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import Field

from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.domain import Model
from lethe.logic import replay

router = Router()

_TABLE_NAME = r"^[A-Za-z0-9_.-]{3,255}$"


class ReplayBody(Model):
    dataset: Annotated[str, Field(min_length=1, max_length=63, description="The inventory dataset restored")]
    table: Annotated[
        str, Field(pattern=_TABLE_NAME, description="The physical name of the restored table to replay onto")
    ]


@router.post(
    "/admin/backups/replay",
    status_code=202,
    summary="Replay erasures onto a restored table",
    description=(
        "Starts a job that scans the restored table once, erases again every item the erasure ledger "
        "holds (by key, or by the subject of an erasure request), holds respected, then sweeps the table "
        "for retention as of now. A table whose key is not the dataset's is refused (422) before "
        "anything is written. Safe to run twice."
    ),
    responses=responses(202, "The job, queued", errors=ADMIN_ERROR_RESPONSES),
    tags=["backups"],
)
def start_replay(body: ReplayBody) -> replay.ReplayJob:
    return replay.start_job(body.dataset, body.table, now=datetime.now(UTC))


@router.get(
    "/admin/backups/replay/<job_id>",
    summary="A replay job",
    description="Its status and what it found and did so far.",
    responses=responses(200, "The job", errors=ADMIN_ERROR_RESPONSES),
    tags=["backups"],
)
def show_replay(job_id: Annotated[str, Path(pattern=r"^rpl_[0-9a-f]{16}$")]) -> replay.ReplayJob:
    return replay.get_job(job_id)

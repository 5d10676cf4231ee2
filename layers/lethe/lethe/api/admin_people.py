"""Routes: the people around a request (included by lethe.api.admin): manual datasets' tasks for their
owners, and the notices recipients are sent (GDPR Art. 19)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import ConfigDict, Field

from lethe.api.admin_requests import actor_of
from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.domain import Model
from lethe.logic import manual_tasks, recipients
from lethe.logic.manual_tasks import ManualTaskView
from lethe.logic.recipients import NoticeView

router = Router()

_REQUEST_ID = r"^req_[A-Za-z0-9_-]{8,64}$"
_DATASET = r"^[a-z][a-z0-9_]{0,62}$"
_NOTICE_ID = r"^[a-z0-9_]{1,63}\.[a-z0-9-]{1,40}\.[0-9a-f]{8}$"
Value = Annotated[str, Field(max_length=manual_tasks.MAX_VALUE_CHARS)] | int | float | bool | None


class CompleteBody(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: Annotated[str, Field(min_length=1, max_length=2000, description="What was done, shown to the subject")]
    items: Annotated[
        list[dict[Annotated[str, Field(max_length=64)], Value]] | None,
        Field(max_length=manual_tasks.MAX_ITEMS, description="Access: the items found, by the dataset's fields"),
    ] = None
    done_by: Annotated[
        str | None, Field(min_length=1, max_length=200, description="Who did it (default: the caller)")
    ] = None


class TaskList(Model):
    tasks: list[ManualTaskView]


class NoticeList(Model):
    notices: list[NoticeView]


def _responses(code: int, description: str) -> dict[int, Any]:
    return responses(code, description, errors=ADMIN_ERROR_RESPONSES)


@router.get(
    "/admin/tasks",
    summary="Manual datasets' tasks still open, earliest due first",
    responses=_responses(200, "The open tasks"),
    tags=["tasks"],
)
def list_tasks(
    status: Annotated[Literal["open"], Query(description="Only open tasks are listed")] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TaskList:
    return TaskList(tasks=manual_tasks.list_open(limit=limit))


@router.post(
    "/admin/requests/<id>/tasks/<dataset>/complete",
    summary="Complete a manual dataset's task with a note (and, for access, the items found)",
    description=(
        "The owner did the work by hand. Items must use the dataset's fields; they join the export. "
        "409 if the request is not waiting for this task (already completed, or ended)."
    ),
    responses=_responses(200, "The task, completed"),
    tags=["tasks"],
)
def complete_task(
    id: Annotated[str, Path(pattern=_REQUEST_ID)],
    dataset: Annotated[str, Path(pattern=_DATASET)],
    body: CompleteBody,
) -> ManualTaskView:
    return manual_tasks.complete(
        id, dataset, note=body.note, items=body.items, done_by=body.done_by or actor_of(router)
    )


@router.get(
    "/admin/recipient-notices",
    summary="Recipient notices that kept failing (GDPR Art. 19), oldest first; or one request's notices",
    responses=_responses(200, "The notices"),
    tags=["recipients"],
)
def list_notices(
    request_id: Annotated[str | None, Query(pattern=_REQUEST_ID, description="All notices of one request")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NoticeList:
    if request_id is not None:
        return NoticeList(notices=recipients.for_request(request_id))
    return NoticeList(notices=recipients.failed(limit=limit))


@router.post(
    "/admin/requests/<id>/recipient-notices/<notice_id>/retry",
    summary="Send a failed recipient notice again",
    description="Back to pending and queued; 409 unless it failed.",
    responses=_responses(200, "The notice, queued again"),
    tags=["recipients"],
)
def retry_notice(
    id: Annotated[str, Path(pattern=_REQUEST_ID)], notice_id: Annotated[str, Path(pattern=_NOTICE_ID)]
) -> NoticeView:
    return recipients.retry(id, notice_id)

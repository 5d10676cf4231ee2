"""Routes: the operator's privacy inbox (included by lethe.api.admin).

Messages to the privacy address that Lethe could not read as one request wait here; the operator files
one as a request of the type it asks for, and the sender gets the verification code as from the form."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from lethe.api.admin_requests import actor_of
from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.data import inbox
from lethe.data.inbox import InboxItem
from lethe.domain import Model
from lethe.logic import inbound_email
from lethe.logic.inbound_email import FilingBody

router = Router()
TAGS = ["privacy inbox"]
_ITEM_ID = r"^inb_[0-9]{8}T[0-9]{6}_[0-9a-f]{16}$"


class InboxPage(Model):
    items: list[InboxItem]
    next_cursor: str | None


@router.get(
    "/admin/inbox",
    summary="Messages to the privacy address that wait for the operator, newest first",
    responses=responses(200, "One page of the inbox", errors=ADMIN_ERROR_RESPONSES),
    tags=TAGS,
)
def list_inbox(
    status: Annotated[Literal["open", "filed"] | None, Query(description="Only open or filed items")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> InboxPage:
    items, next_cursor = inbox.list_items(status=status, limit=limit, cursor=cursor)
    return InboxPage(items=items, next_cursor=next_cursor)


@router.post(
    "/admin/inbox/<id>/file",
    summary="File an inbox message as a request for its sender",
    description=(
        "Makes a request of the given type for the sender's address, in identity_unverified: the code is "
        "emailed to the sender, as from the form. An item is filed once (409 after); a message without a "
        "usable sender cannot be filed (409)."
    ),
    responses=responses(200, "The item, filed, with the new request's id", errors=ADMIN_ERROR_RESPONSES),
    tags=TAGS,
)
def file_inbox_item(id: Annotated[str, Path(pattern=_ITEM_ID)], body: FilingBody) -> InboxItem:
    return inbound_email.file_item(id, body, actor=actor_of(router))

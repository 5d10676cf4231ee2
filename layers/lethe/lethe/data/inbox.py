"""The operator's inbox: messages to the privacy address that Lethe could not turn into a request.

Rows of ControlTable, pk "INBOX", sk the item id ("inb_<received, UTC>_<digest of the message id>"), so
the listing is one Query in the order mail arrived and the same message always names the same item.
An item holds the sender's address, the subject and an excerpt of the text: personal data, so every
row carries a TTL (`inbox_retention_days`) and nothing here is logged.

And the raw messages SES stored in the inbound bucket, which the inbound function reads.
"""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError, UpdateError

from lethe.aws import client, error_code
from lethe.data.models import ControlRecord, bind_models
from lethe.domain import Model
from lethe.errors import InboxItemNotFound, InvalidCursor, InvalidTransition
from lethe.settings import get_settings

PARTITION = "INBOX"
ITEM_PREFIX = "inb_"


class InboxItem(Model):
    item_id: str
    received_at: datetime
    sender: str | None
    subject: str
    excerpt: str
    reason: str
    status: Literal["open", "filed"] = "open"
    request_id: str | None = None
    filed_at: datetime | None = None
    filed_by: str | None = None


def _bound() -> None:
    settings = get_settings()
    if ControlRecord.Meta.table_name != settings.control_table:
        bind_models(settings)


def _to_item(record: ControlRecord) -> InboxItem:
    return InboxItem.model_validate(record.data or {})


def add(item: InboxItem) -> bool:
    """Store a new item; False when it is already there (the same message delivered again)."""
    _bound()
    expires = item.received_at + timedelta(days=get_settings().inbox_retention_days)
    record = ControlRecord(
        PARTITION,
        item.item_id,
        at=item.received_at.isoformat(),
        data=item.model_dump(mode="json"),
        active=True,
        expires_at=int(expires.timestamp()),
    )
    try:
        record.save(condition=ControlRecord.sk.does_not_exist())
    except PutError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def get(item_id: str) -> InboxItem:
    _bound()
    if not item_id.startswith(ITEM_PREFIX) or len(item_id) > 80:
        raise InboxItemNotFound("no such inbox item")
    try:
        return _to_item(ControlRecord.get(PARTITION, item_id, consistent_read=True))
    except ControlRecord.DoesNotExist as exc:
        raise InboxItemNotFound("no such inbox item") from exc


def _cursor(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def _uncursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise InvalidCursor("the cursor is not one this listing gave") from exc
    if (
        not isinstance(key, dict)
        or set(key) != {"pk", "sk"}
        or key["pk"] != {"S": PARTITION}
        or not isinstance(key["sk"], dict)
        or set(key["sk"]) != {"S"}
        or not str(key["sk"]["S"]).startswith(ITEM_PREFIX)
    ):
        raise InvalidCursor("the cursor is not one this listing gave")
    return key


def list_items(
    *, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[list[InboxItem], str | None]:
    """One page of items, newest first, and the cursor of the next page."""
    _bound()
    now = int(datetime.now(UTC).timestamp())
    # TTL deletion lags; an item past its date is gone for the operator too.
    condition = ControlRecord.expires_at > now
    if status:
        condition &= ControlRecord.active == (status == "open")
    result = ControlRecord.query(
        PARTITION,
        ControlRecord.sk.startswith(ITEM_PREFIX),
        filter_condition=condition,
        scan_index_forward=False,
        limit=limit,
        last_evaluated_key=_uncursor(cursor),
        consistent_read=True,
    )
    items = [_to_item(record) for record in result]
    return items, _cursor(result.last_evaluated_key)


def mark_filed(item_id: str, *, request_id: str, actor: str, now: datetime) -> InboxItem:
    """open -> filed, once: a second filing of the same item is refused (InvalidTransition)."""
    current = get(item_id)
    filed = current.model_copy(update={"status": "filed", "request_id": request_id, "filed_at": now, "filed_by": actor})
    record = ControlRecord(PARTITION, item_id)
    try:
        record.update(
            actions=[ControlRecord.data.set(filed.model_dump(mode="json")), ControlRecord.active.set(False)],
            condition=ControlRecord.active == True,  # noqa: E712 - a pynamodb condition, not a comparison
        )
    except UpdateError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise InvalidTransition("this inbox item is already filed") from exc
        raise
    return filed


# ------------------------------------------------------------------ the raw messages SES stored


def read_message(message_id: str) -> tuple[bytes, bool] | None:
    """The raw message SES stored in the inbound bucket (at most inbound_max_bytes of it) and whether
    it was read whole; None when it is no longer there (expired, or never stored)."""
    settings = get_settings()
    try:
        response = client("s3").get_object(
            Bucket=settings.inbound_bucket,
            Key=f"{settings.inbound_prefix}{message_id}",
            Range=f"bytes=0-{settings.inbound_max_bytes - 1}",
        )
    except ClientError as exc:
        if error_code(exc) not in ("NoSuchKey", "404"):
            raise
        return None
    body: bytes = response["Body"].read()
    total = _total_size(response.get("ContentRange"), len(body))
    return body, total <= len(body)


def _total_size(content_range: str | None, read: int) -> int:
    if content_range and "/" in content_range:
        with contextlib.suppress(ValueError):
            return int(content_range.rsplit("/", 1)[1])
    return read

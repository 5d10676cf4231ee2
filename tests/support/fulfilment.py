"""Helpers for fulfilment tests: store a request in a given status, put dataset items, and drain the
work queue through the real FulfilmentWorkerFunction handler, as Lambda's event source mapping would."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lethe.domain import Regulation, RequestType, Status

WORKER = "FulfilmentWorkerFunction"


def unique_email(tag: str = "subject") -> str:
    return f"{tag}.{uuid.uuid4().hex[:10]}@example.org"


def new_request(
    kind: RequestType | str,
    email: str,
    *,
    status: Status = Status.pending,
    corrections: dict[str, str] | None = None,
    regulation: Regulation = Regulation.gdpr,
) -> str:
    from lethe.data import requests as repository
    from lethe.keys import key_ring

    now = datetime.now(UTC)
    request_id = f"req_{uuid.uuid4().hex[:16]}"
    repository.create(
        repository.DataSubjectRequest(
            request_id=request_id,
            type=RequestType(kind),
            status=status,
            regulation=regulation,
            created_at=now,
            due_at=now + timedelta(days=30),
            updated_at=now,
            subject_ref=key_ring().subject_ref(email),
            email=email,
            corrections=corrections,
        )
    )
    return request_id


def put_items(table: str, items: list[dict[str, Any]]) -> None:
    from boto3.dynamodb.types import TypeSerializer

    from lethe.aws import client
    from lethe.settings import get_settings

    serializer = TypeSerializer()
    ddb = client("dynamodb")
    for item in items:
        ddb.put_item(
            TableName=get_settings().table_name(table), Item={k: serializer.serialize(v) for k, v in item.items()}
        )


def get_item(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    from lethe.aws import client
    from lethe.settings import get_settings

    raw = client("dynamodb").get_item(
        TableName=get_settings().table_name(table),
        Key={k: TypeSerializer().serialize(v) for k, v in key.items()},
        ConsistentRead=True,
    )
    if "Item" not in raw:
        return None
    return {k: TypeDeserializer().deserialize(v) for k, v in raw["Item"].items()}


def receive(queue_url: str) -> list[dict[str, Any]]:
    from lethe.aws import client

    return list(
        client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0)
        .get("Messages", [])
    )


def drain(
    invoke: Callable[..., Any], *, keep: list[dict[str, Any]] | None = None, rounds: int = 50
) -> list[dict[str, Any]]:
    """Deliver every message of the work queue to the worker until it is empty. Failed records are
    returned (not deleted). `keep` collects each delivered event, to redeliver it later."""
    from lethe.aws import client
    from lethe.settings import get_settings
    from lethe_local.events import sqs_event

    url = get_settings().work_queue_url
    sqs = client("sqs")
    failures: list[dict[str, Any]] = []
    for _ in range(rounds):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return failures
        event = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:WorkQueue")
        if keep is not None:
            keep.append(event)
        result = invoke(WORKER, event)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed:
                failures.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the work queue did not drain")


def request_rows() -> int:
    """Every row of the requests table (a test may Scan; the service never does)."""
    from lethe.aws import client
    from lethe.settings import get_settings

    return int(client("dynamodb").scan(TableName=get_settings().requests_table, Select="COUNT")["Count"])


def sent_mail() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends["123456789012"]["us-east-1"].sent_messages)


ADMIN_TOKEN = "fulfilment-tests-token"


def use_admin_token(monkeypatch: Any) -> None:
    """Let admin_call in: the functions' admin token becomes ADMIN_TOKEN."""
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_ADMIN_TOKEN", ADMIN_TOKEN)
    get_settings.cache_clear()


def admin_call(
    invoke: Callable[..., Any],
    method: str,
    path: str,
    *,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, list[str]] | None = None,
) -> tuple[int, Any]:
    """One admin API call through the real handler (needs LETHE_ADMIN_TOKEN = ADMIN_TOKEN)."""
    import json

    from lethe_local.events import api_event

    event = api_event(
        method,
        path,
        resource=resource,
        path_parameters=path_parameters,
        query=query,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        body=None if body is None else json.dumps(body),
    )
    result = invoke("AdminApiFunction", event)
    text = result.get("body") or "null"
    return result["statusCode"], json.loads(text)


def audit_dump() -> str:
    """Every audit record as text, to look for personal data in it."""
    from lethe.aws import client
    from lethe.settings import get_settings

    pages = client("dynamodb").get_paginator("scan").paginate(TableName=get_settings().audit_table)
    return "\n".join(str(item) for page in pages for item in page.get("Items", []))


def mails_to(address: str) -> list[tuple[str, str]]:
    """(subject, whole decoded text) of every email sent to an address."""
    from email import message_from_string, policy

    found = []
    for raw in sent_mail():
        message = message_from_string(raw.raw_data, policy=policy.default)
        if address in str(message["To"]):
            text = "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")
            found.append((str(message["Subject"]), text))
    return found

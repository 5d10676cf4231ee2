"""Builds the events Lambda would receive: API Gateway REST proxy, SQS batches."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any


def api_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    source_ip: str = "127.0.0.1",
    stage: str = "local",
    request_path: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as API Gateway would send it.

    `path` is the resource's path (without the stage); `request_path` is the path the client asked for
    ("/prod/requests" on an execute-api URL), which API Gateway puts in requestContext.path. Without it the
    API is reached as behind a custom domain: the stage is not part of the URL."""
    headers = dict(headers or {})
    raw = body.encode() if isinstance(body, str) else body
    is_text = raw is None or _is_text(raw)
    multi_query = query or {}
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method.upper(),
            "path": request_path or path,
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": None if raw is None else (raw.decode() if is_text else base64.b64encode(raw).decode()),
        "isBase64Encoded": not is_text,
    }


def _is_text(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS event source batch from ReceiveMessage results."""
    records = []
    for message in messages:
        body = message["Body"]
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": body,
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 3 else "us-east-1",
            }
        )
    return {"Records": records}


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2)

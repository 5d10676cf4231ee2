"""The request types settled without dataset work, and the AWS calls a dataset task makes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lethe.domain import RequestType, Status
from tests.support.aws_calls import counting_calls
from tests.support.fulfilment import new_request, put_items, unique_email

Invoke = Callable[..., Any]


@pytest.mark.parametrize("kind", [RequestType.objection, RequestType.marketing_opt_out, RequestType.consent_withdrawal])
def test_objection_and_opt_out_suppress_and_withdraw_marketing(aws: Any, kind: RequestType) -> None:
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request, list_events
    from lethe.logic.suppression import is_suppressed

    # Given a verified request that needs no dataset work
    email = unique_email(kind.value)
    request_id = new_request(kind, email)
    # When fulfilment starts
    fulfilment.start(request_id)
    # Then it is settled at once: suppressed, the withdrawal recorded, completed
    assert is_suppressed(email)
    assert any(e.kind == "consent_withdrawn" for e in list_events(request_id))
    request = get_request(request_id)
    assert request.status is Status.completed and request.datasets_done == frozenset()


def test_start_twice_queues_once(invoke: Invoke) -> None:
    from lethe.aws import client
    from lethe.logic import fulfilment
    from lethe.settings import get_settings

    request_id = new_request(RequestType.access, unique_email("twice"))
    fulfilment.start(request_id)
    fulfilment.start(request_id)
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=get_settings().work_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == 7  # one per demo dataset found by email


def test_erasure_task_calls_scale_with_the_subjects_items(aws: Any) -> None:
    from lethe.logic import fulfilment

    # Given 60 feedback items and 3 accounts of one subject
    email = unique_email("calls")
    put_items("FeedbackTable", [{"feedback_id": f"fb-calls-{n}", "reporter_email": email} for n in range(60)])
    put_items("AccountsTable", [{"account_id": f"acct-calls-{n}", "email": email, "name": "A"} for n in range(3)])
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    # When the delete task and the anonymize task run
    with counting_calls() as deletes:
        fulfilment.run_task(request_id, "feedback")
    with counting_calls() as masks:
        fulfilment.run_task(request_id, "accounts")
    # Then deletes go 25 at a time, masking is one UpdateItem per item, and nothing scans
    assert deletes.calls["dynamodb.BatchWriteItem"] == 3
    assert deletes.calls["dynamodb.Scan"] == 0 and masks.calls["dynamodb.Scan"] == 0
    assert deletes.calls["dynamodb.Query"] >= 1
    assert masks.calls["dynamodb.UpdateItem"] == 3  # three items
    assert masks.calls["dynamodb.TransactWriteItems"] == 1  # the task's completion with its audit record

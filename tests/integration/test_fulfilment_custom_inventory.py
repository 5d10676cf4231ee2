"""Fulfilment against a hand-written inventory with its own tables (composite key, GSI lookup, a key
read from DescribeTable, optional fields missing): nothing is tied to the demo tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lethe.domain import RequestType, Status
from tests.support.custom_inventory import custom_inventory
from tests.support.fulfilment import drain, get_item, new_request, put_items, unique_email

__all__ = ["custom_inventory"]
Invoke = Callable[..., Any]


def seed(email: str, tag: str) -> None:
    put_items(
        "custom-support-tickets",
        [
            {
                "org_id": f"org-{tag}",
                "ticket_id": "t-1",
                "requester": email,
                "phone": "+44 20 7946 0000",
                "body": "my login fails",
                "opened_at": "2026-03-17",
            },
            # phone is optional: this ticket has none
            {
                "org_id": f"org-{tag}",
                "ticket_id": "t-2",
                "requester": email,
                "body": "thanks",
                "opened_at": "2026-04-02",
            },
        ],
    )
    put_items(
        "custom-product-events",
        [
            {"actor_email": email, "event_id": f"e-{n}", "client_ip": "2001:db8:1:2::9", "tenant": "tenant-7"}
            for n in range(3)
        ],
    )
    put_items("custom-contracts", [{"contract_id": f"c-{tag}", "signer": email, "signed_on": "2025-06-30"}])


def test_erasure_on_the_custom_inventory(custom_inventory: Path, invoke: Invoke) -> None:
    from lethe.data import vault
    from lethe.keys import key_ring
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    # Given a subject in every custom dataset, and a bystander
    email, other = unique_email("custom"), unique_email("bystander")
    seed(email, "a")
    seed(other, "b")
    request_id = new_request(RequestType.erasure, email)
    # When the erasure runs
    fulfilment.start(request_id)
    assert drain(invoke) == []
    # Then it completed across exactly the custom datasets
    request = get_request(request_id)
    assert request.status is Status.completed
    assert request.datasets_done == {"tickets", "product_events", "contracts"}
    # tickets (composite key, GSI): anonymized; the missing optional field stays missing
    first = get_item("custom-support-tickets", {"org_id": "org-a", "ticket_id": "t-1"})
    second = get_item("custom-support-tickets", {"org_id": "org-a", "ticket_id": "t-2"})
    assert first is not None and second is not None
    assert first["requester"].startswith("pseud:") and first["phone"] == "[redacted]"
    assert first["opened_at"] == "2026-03-01" and first["body"].startswith("rand:")
    assert "phone" not in second
    # product_events (key from DescribeTable): deleted, bystander's kept
    assert get_item("custom-product-events", {"actor_email": email, "event_id": "e-0"}) is None
    assert get_item("custom-product-events", {"actor_email": other, "event_id": "e-0"}) is not None
    # contracts: isolated until ten years after signature
    assert get_item("custom-contracts", {"contract_id": "c-a"}) is None
    (entry,) = vault.entries_for_subject([key_ring().subject_ref(email)])
    assert entry.dataset == "contracts" and entry.purge_at.startswith("2035-06-30")


def test_access_on_the_custom_inventory(custom_inventory: Path, invoke: Invoke) -> None:
    from lethe.aws import client
    from lethe.logic import fulfilment
    from lethe.settings import get_settings

    email = unique_email("custom-access")
    seed(email, "c")
    request_id = new_request(RequestType.access, email)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    body = client("s3").get_object(Bucket=get_settings().export_bucket, Key=f"exports/{request_id}/export.json")
    export = json.loads(body["Body"].read())
    # (and Lethe's own records of the subject, a dataset of every export)
    assert set(export["datasets"]) == {"tickets", "product_events", "contracts", "lethe"}
    assert len(export["datasets"]["tickets"]["items"]) == 2
    assert len(export["datasets"]["product_events"]["items"]) == 3
    assert export["datasets"]["contracts"]["retention"]["basis"] == "Commercial code: ten years"


def test_restriction_marks_items_on_the_custom_inventory(custom_inventory: Path, invoke: Invoke) -> None:
    from lethe.data.datasets import RESTRICTED_ATTRIBUTE
    from lethe.logic import fulfilment

    email = unique_email("restrict")
    seed(email, "d")
    request_id = new_request(RequestType.restriction, email)
    fulfilment.start(request_id)
    assert drain(invoke) == []
    ticket = get_item("custom-support-tickets", {"org_id": "org-d", "ticket_id": "t-2"})
    event = get_item("custom-product-events", {"actor_email": email, "event_id": "e-1"})
    assert ticket is not None and ticket[RESTRICTED_ATTRIBUTE] == request_id
    assert event is not None and event[RESTRICTED_ATTRIBUTE] == request_id


def test_missing_table_fails_the_task_and_it_is_retried(custom_inventory: Path, invoke: Invoke) -> None:
    from lethe.aws import client
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request

    # Given a dataset whose table does not exist
    client("dynamodb").delete_table(TableName="custom-contracts")
    email = unique_email("missing")
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    # When the tasks run
    failures = drain(invoke)
    # Then only that dataset's task failed (it stays pending for a retry), the others are done
    assert [json.loads(m["Body"])["dataset"] for m in failures] == ["contracts"]
    request = get_request(request_id)
    assert request.status is Status.in_progress and request.datasets_pending == {"contracts"}

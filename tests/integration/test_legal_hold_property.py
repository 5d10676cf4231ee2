"""Property: no item under a legal hold is ever deleted or altered, whatever mix of datasets, holds
and request types runs. Held items stay live as they were, or sit in the vault exactly as they were.

One moto account serves every example; the tables are emptied between examples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lethe.domain import RequestType, Status
from tests.support.custom_inventory import custom_inventory
from tests.support.fulfilment import get_item, new_request, put_items, unique_email

__all__ = ["custom_inventory"]
Invoke = Callable[..., Any]

DATASETS = ("tickets", "product_events", "contracts")
TYPES = (
    RequestType.erasure,
    RequestType.child_data_report,
    RequestType.access,
    RequestType.rectification,
    RequestType.restriction,
)


def _empty(table: str, key: list[str]) -> None:
    from lethe.aws import client

    ddb = client("dynamodb")
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            ddb.delete_item(TableName=table, Key={k: item[k] for k in key})


def clean() -> None:
    from lethe.settings import get_settings

    s = get_settings()
    _empty("custom-support-tickets", ["org_id", "ticket_id"])
    _empty("custom-product-events", ["actor_email", "event_id"])
    _empty("custom-contracts", ["contract_id"])
    _empty(s.vault_table, ["vault_id"])
    _empty(s.control_table, ["pk", "sk"])


def items_for(dataset: str, email: str, n: int, tag: str) -> tuple[str, list[dict[str, Any]]]:
    if dataset == "tickets":
        return "custom-support-tickets", [
            {
                "org_id": f"o-{tag}",
                "ticket_id": f"t{i}",
                "requester": email,
                "phone": "+1 555 0100",
                "opened_at": "2026-01-05",
            }
            for i in range(n)
        ]
    if dataset == "product_events":
        return "custom-product-events", [
            {"actor_email": email, "event_id": f"{tag}-{i}", "client_ip": "192.0.2.44", "tenant": "t1"}
            for i in range(n)
        ]
    return "custom-contracts", [
        {"contract_id": f"c-{tag}-{i}", "signer": email, "signed_on": "2024-02-02"} for i in range(n)
    ]


def key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
    names = {
        "custom-support-tickets": ("org_id", "ticket_id"),
        "custom-product-events": ("actor_email", "event_id"),
        "custom-contracts": ("contract_id",),
    }[table]
    return {k: item[k] for k in names}


scenario = st.fixed_dictionaries(
    {
        "counts": st.fixed_dictionaries({d: st.integers(0, 3) for d in DATASETS}),
        "subject_hold": st.booleans(),
        "dataset_holds": st.sets(st.sampled_from(DATASETS)),
        "held_dataset_for_subject": st.none() | st.sampled_from(DATASETS),
        "type": st.sampled_from(TYPES),
        "redeliver": st.booleans(),
    }
)


@pytest.mark.usefixtures("custom_inventory")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenario)
def test_no_held_item_is_ever_deleted(custom_inventory: Path, case: dict[str, Any]) -> None:
    from lethe.data import vault
    from lethe.keys import key_ring
    from lethe.logic import fulfilment, legal_holds
    from lethe.logic.requests import get_request

    clean()
    # Given a subject with items in some datasets, and some holds
    email = unique_email("prop")
    seeded: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for dataset, n in case["counts"].items():
        table, items = items_for(dataset, email, n, unique_email("x")[:12])
        put_items(table, items)
        seeded[dataset] = [(table, item) for item in items]
    holds: dict[str, bool] = dict.fromkeys(DATASETS, False)
    if case["subject_hold"]:
        legal_holds.place(reason="subject hold", email=email)
        holds = dict.fromkeys(DATASETS, True)
    for dataset in case["dataset_holds"]:
        legal_holds.place(reason="dataset hold", dataset=dataset)
        holds[dataset] = True
    if case["held_dataset_for_subject"]:
        legal_holds.place(reason="narrow hold", email=email, dataset=case["held_dataset_for_subject"])
        holds[case["held_dataset_for_subject"]] = True
    corrections = {"phone": "+1 555 0199"} if case["type"] is RequestType.rectification else None
    request_id = new_request(case["type"], email, corrections=corrections)
    # When the request runs (each task possibly twice)
    fulfilment.start(request_id)
    for dataset in DATASETS:
        fulfilment.run_task(request_id, dataset)
        if case["redeliver"]:
            fulfilment.run_task(request_id, dataset)
    assert get_request(request_id).status is Status.completed
    # Then every held item is live and unchanged, or in the vault exactly as it was
    in_vault = {
        (e.dataset, tuple(sorted(e.item_key.items()))): e.item
        for e in vault.entries_for_subject([key_ring().subject_ref(email)])
    }
    for dataset, items in seeded.items():
        if not holds[dataset]:
            continue
        for table, item in items:
            key = key_of(table, item)
            live = get_item(table, key)
            kept = in_vault.get((dataset, tuple(sorted(key.items()))))
            if live is not None:
                live.pop("lethe_restricted", None)
                if case["type"] is RequestType.rectification and dataset == "tickets":
                    # correcting the subject's own field is not a loss; the rest must be untouched
                    live["phone"] = item["phone"]
                assert live == item, f"{dataset} item altered under a hold"
            else:
                assert kept == item, f"{dataset} item lost under a hold"

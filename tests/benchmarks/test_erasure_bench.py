"""Erasure that follows one link: the DynamoDB calls one erasure makes on the dataset tables, against
the minimal plan, at table sizes N and 10N (filler subjects in the same tables). The subject is
known by email; their account links to an account id, and meetings are found only through it. The
request runs through the real FulfilmentWorkerFunction handler, fed from the work queue as
Lambda's event source mapping would.

The minimal plan is written down here from what the data map promises (which identity finds each
dataset, and what an erasure does to it), not taken from the code it measures. Per dataset table:
- one Query per identity value per page of the subject's items (on the subject index, or on the key);
- ceil(deletes / 25) BatchWriteItem for a `delete` dataset;
- one UpdateItem per item of an `anonymize` dataset;
- for an `isolate` dataset, one TransactWriteItems per item (a Put into the vault and a conditional
  Delete from the dataset, together: the vault isolation costs one transaction per item, stated);
- then the proof of erasure: one Query per identity value per page again, which finds nothing.

Calls on every other table (requests, audit, holds, suppression, consents, vault) and on the other
services are bookkeeping; they are reported apart, and must not grow with the tables either.
Calls are counted through botocore's event hooks on every client the worker creates."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3

from lethe.domain import RequestType, Status
from tests.support.aws_calls import hooked_clients
from tests.support.fulfilment import drain, new_request, unique_email

N = 1_000  # filler items across the seven dataset tables at size N (10N at the second size)

# The subject's items per dataset: k = 1 + 40 + 12 + 60 + 1 + 5 + 30 = 149. One account: one link.
SUBJECT_ITEMS = {
    "accounts": 1,
    "guest_sessions": 40,
    "diagnostics": 12,
    "feedback": 60,
    "marketing_contacts": 1,
    "invoices": 5,
    "meetings": 30,
}

# What the data map promises per dataset: the identity that finds it, and its on_erasure.
PROMISED = {
    "accounts": ("email", "anonymize"),
    "guest_sessions": ("email", "delete"),
    "diagnostics": ("email", "delete"),
    "feedback": ("email", "delete"),
    "marketing_contacts": ("email", "delete"),
    "invoices": ("email", "isolate"),
    "meetings": ("account_id", "anonymize"),
}
PAGE = 1  # the subject's items fit one Query page in every dataset


def _item(dataset: str, email: str, n: int, account_id: str | None = None) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    return {
        "accounts": {
            "account_id": account_id or f"acct-{tag}",
            "email": email,
            "name": "Ada Filler",
            "company": "Acme",
            "last_ip": "203.0.113.7",
            "created_at": "2025-03-04T10:00:00+00:00",
        },
        "guest_sessions": {
            "session_id": f"sess-{tag}",
            "guest_email": email,
            "customer_id": "cust-1",
            "display_name": "Guest",
            "ip_address": "198.51.100.9",
        },
        "diagnostics": {
            "user_email": email,
            "recorded_at": f"2026-01-01T00:00:{n:02d}.{tag}",
            "ip_address": "198.51.100.10",
            "browser": "Firefox",
        },
        "feedback": {"feedback_id": f"fb-{tag}", "reporter_email": email, "console_log": "hello " * 20},
        "marketing_contacts": {"email": email, "name": "Mark"},
        "invoices": {
            "invoice_id": f"inv-{tag}",
            "billing_email": email,
            "billing_name": "Ada",
            "issued_at": "2025-06-01T00:00:00+00:00",
        },
        "meetings": {
            "meeting_id": f"mtg-{tag}",
            "host_account_id": account_id or f"acct-{tag}",
            "topic": "Weekly sync",
            "started_at": "2026-02-01T10:00:00+00:00",
        },
    }[dataset]


def _write(dataset: str, items: list[dict[str, Any]]) -> None:
    from lethe.inventory import get_inventory
    from lethe.settings import get_settings

    table = boto3.resource("dynamodb", region_name="us-east-1").Table(
        get_settings().table_name(get_inventory().dataset(dataset).table)
    )
    with table.batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)


def _add_filler(count: int) -> None:
    """`count` items of other subjects, spread over the seven dataset tables."""
    per_table = count // len(SUBJECT_ITEMS)
    for dataset in SUBJECT_ITEMS:
        _write(
            dataset, [_item(dataset, f"filler.{uuid.uuid4().hex[:10]}@example.net", n % 60) for n in range(per_table)]
        )


class TableCalls:
    """Calls per (operation, table), from the API parameters of each call (before-parameter-build)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.active = False

    def hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        service = model.service_model.endpoint_prefix
        if service != "dynamodb":
            self.calls[(f"{service}.{model.name}", "")] += 1
            return
        tables = set()
        if "TableName" in params:
            tables.add(params["TableName"])
        tables.update(params.get("RequestItems", {}))
        for entry in params.get("TransactItems", []):
            for body in entry.values():
                tables.add(body["TableName"])
        for table in sorted(tables) or [""]:
            self.calls[(f"dynamodb.{model.name}", table)] += 1


def _erase_one_subject(invoke: Callable[..., Any], counter: TableCalls) -> tuple[tuple[str, str], dict[str, str]]:
    from lethe.data import request_tasks
    from lethe.inventory import get_inventory
    from lethe.logic import fulfilment, fulfilment_finish
    from lethe.logic.requests import get_request
    from lethe.settings import get_settings

    email = unique_email("erasure-bench")
    account_id = f"acct-{uuid.uuid4().hex[:12]}"
    for dataset, k in SUBJECT_ITEMS.items():
        _write(dataset, [_item(dataset, email, n, account_id) for n in range(k)])
    request_id = new_request(RequestType.erasure, email)
    fulfilment.start(request_id)
    counter.active = True
    failures = drain(invoke)
    counter.active = False
    assert failures == []
    assert get_request(request_id).status is Status.completed
    results = fulfilment_finish.by_dataset(request_tasks.task_results(request_id), get_inventory())
    for dataset, k in SUBJECT_ITEMS.items():
        done = results[dataset]
        assert done["found"] == k and done[{"delete": "deleted"}.get(done["action"], done["action"] + "d")] == k
    assert (get_request(request_id).outcome or {})["datasets"]["meetings"]["remaining"] == 0
    tables = {get_settings().table_name(d.table): name for name, d in get_inventory().datasets.items()}
    return (email, account_id), tables


def _remaining(dataset: str, identity: tuple[str, str]) -> int:
    """Read the table directly, by the attribute the subject is found by (not through Lethe)."""
    from boto3.dynamodb.conditions import Key

    from lethe.inventory import get_inventory
    from lethe.settings import get_settings

    spec = get_inventory().dataset(dataset)
    value = identity[0] if PROMISED[dataset][0] == "email" else identity[1]
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(get_settings().table_name(spec.table))
    query: dict[str, Any] = {"KeyConditionExpression": Key(spec.subject.attribute).eq(value)}
    if spec.subject.index:
        query["IndexName"] = spec.subject.index
    return len(table.query(**query)["Items"])


def _plan() -> Counter[str]:
    """The minimal plan's calls on the dataset tables, by operation, from PROMISED alone."""
    values = {"email": 1, "account_id": 1}  # one address, one linked account id
    plan: Counter[str] = Counter()
    for name, (identity, on_erasure) in PROMISED.items():
        k = SUBJECT_ITEMS[name]
        plan["dynamodb.Query"] += values[identity] * PAGE  # find the items
        if on_erasure == "delete":
            plan["dynamodb.BatchWriteItem"] += math.ceil(k / 25)
        elif on_erasure == "anonymize":
            plan["dynamodb.UpdateItem"] += k
        else:
            plan["dynamodb.TransactWriteItems"] += k
        plan["dynamodb.Query"] += values[identity] * PAGE  # the proof of erasure reads it again
    return plan


def _split(counter: TableCalls, tables: dict[str, str]) -> tuple[Counter[str], Counter[str]]:
    dataset_calls: Counter[str] = Counter()
    bookkeeping: Counter[str] = Counter()
    for (operation, table), n in counter.calls.items():
        if table in tables:
            dataset_calls[operation] += n
        else:
            bookkeeping[operation] += n
    return dataset_calls, bookkeeping


def test_erasure_calls(aws: Any, invoke: Callable[..., Any], bench_report: Any) -> None:
    # Given seven dataset tables holding N filler items of other subjects, and a subject with k items
    # (one hook on every client made during the test: clients the worker keeps between invocations,
    # such as the idempotency layer's, are counted in the run that uses them)
    calls_n, calls_10n = TableCalls(), TableCalls()
    with (
        hooked_clients("before-parameter-build", calls_n.hook),
        hooked_clients("before-parameter-build", calls_10n.hook),
    ):
        _add_filler(N)
        # When the subject's erasure runs through the worker
        subject_n, tables = _erase_one_subject(invoke, calls_n)
        # And again when the tables have grown to 10N, for another subject with the same k items
        _add_filler(9 * N)
        subject_10n, _ = _erase_one_subject(invoke, calls_10n)

    # Then each erasure removed, masked or isolated every item of its subject: none is found any more
    for subject in (subject_n, subject_10n):
        for dataset in SUBJECT_ITEMS:
            assert _remaining(dataset, subject) == 0
    plan = _plan()
    data_n, book_n = _split(calls_n, tables)
    data_10n, book_10n = _split(calls_10n, tables)
    k = sum(SUBJECT_ITEMS.values())
    print(f"\nsubject items k={k} {SUBJECT_ITEMS}, one link; filler items N={N}, 10N={10 * N}")
    print(f"minimal plan:             {dict(sorted(plan.items()))}")
    print(f"dataset-table calls at N: {dict(sorted(data_n.items()))}")
    print(f"dataset-table calls 10N:  {dict(sorted(data_10n.items()))}")
    print(f"bookkeeping calls at N:   {dict(sorted(book_n.items()))}")
    print(f"bookkeeping calls at 10N: {dict(sorted(book_10n.items()))}")

    plan_total = sum(plan.values())
    vs_plan = bench_report.row(
        "dataset calls vs minimal plan (N)",
        sum(data_n.values()),
        plan_total,
        target="1.0",
        unit="calls",
        k=k,
        plan=dict(plan),
        measured_per_op=dict(data_n),
    )
    bench_report.row(
        "dataset calls vs minimal plan (10N)",
        sum(data_10n.values()),
        plan_total,
        target="1.0",
        unit="calls",
        k=k,
        measured_per_op=dict(data_10n),
    )
    sizes = bench_report.row(
        "dataset calls 10N vs N", sum(data_10n.values()), sum(data_n.values()), target="1.0", unit="calls", n=N
    )
    books = bench_report.row(
        "bookkeeping calls 10N vs N",
        sum(book_10n.values()),
        sum(book_n.values()),
        target="1.0",
        unit="calls",
        per_op_n=dict(book_n),
        per_op_10n=dict(book_10n),
    )
    assert data_n == plan, "the erasure made calls on the dataset tables beyond the minimal plan"
    assert vs_plan == 1.0 and sizes == 1.0
    assert books == 1.0

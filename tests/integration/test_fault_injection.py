"""Fault injection: with a seeded 20% of DynamoDB, S3 and SES calls failing (throttling, 500s, read
timeouts), data-subject requests of every type and a retention sweep of expired items all end
correctly once clients retry, queues redeliver and operators retry what reached a dead-letter queue.
Then, with faults off, every item, request, email and audit record is counted: nothing lost, nothing
applied twice, nothing stuck.

The seed comes from LETHE_FAULT_SEED (default 8), the number of requests from LETHE_FAULT_REQUESTS
(default 10, one of each type, so `make test` stays short; `make faults` runs 200) and the rate from
LETHE_FAULT_RATE (default 0.2). Run with other seeds to explore:
    LETHE_FAULT_SEED=3 pytest tests/integration/test_fault_injection.py -s"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.support.aws_calls import injecting_faults
from tests.support.faults_driver import Tally, api, poll
from tests.support.fulfilment import sent_mail

Invoke = Callable[..., Any]
SEED = int(os.environ.get("LETHE_FAULT_SEED", "8"))
REQUESTS = int(os.environ.get("LETHE_FAULT_REQUESTS", "10"))
RATE = float(os.environ.get("LETHE_FAULT_RATE", "0.2"))
TOKEN = "fault-injection-token"
PUBLIC, ADMIN = "PublicApiFunction", "AdminApiFunction"
TYPES = (
    "access",
    "portability",
    "erasure",
    "restriction",
    "objection",
    "marketing_opt_out",
    "consent_withdrawal",
    "rectification",
    "child_data_report",
    "complaint",
)
NEEDS_APPROVAL = {"rectification", "child_data_report", "complaint"}
TERMINAL = {"completed", "denied", "canceled", "expired"}
TABLES = {
    "accounts": ("AccountsTable", ("account_id",)),
    "guest_sessions": ("GuestSessionsTable", ("session_id",)),
    "diagnostics": ("DiagnosticsTable", ("user_email", "recorded_at")),
    "feedback": ("FeedbackTable", ("feedback_id",)),
    "marketing_contacts": ("MarketingContactsTable", ("email",)),
    "invoices": ("InvoicesTable", ("invoice_id",)),
}
CORRECTED = "Corrected Name"


def _erasure_pseudonym(value: Any) -> bool:
    """An erasure's pseudonym: its key died with the request, so only its shape can be checked."""
    return isinstance(value, str) and value.startswith("pseud:") and len(value) == len("pseud:") + 32


def ddb() -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1")


def scan(table: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = ddb().Table(table).scan(**kwargs)
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def snapshot() -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every item of every demo dataset, by key."""
    return {
        name: {tuple(item[k] for k in keys): item for item in scan(table)} for name, (table, keys) in TABLES.items()
    }


def write_items(dataset: str, items: list[dict[str, Any]]) -> None:
    """Write items as the owning service would, with the expiry attributes of an indexed dataset."""
    from lethe.data.expiry import expiry_attributes
    from lethe.inventory import get_inventory

    spec = get_inventory().dataset(dataset)
    with ddb().Table(TABLES[dataset][0]).batch_writer() as batch:
        for item in items:
            batch.put_item(Item={**item, **expiry_attributes(spec, item)})


def subject_items(email: str, tag: str, recent: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "accounts": [
            {
                "account_id": f"acct-{tag}",
                "email": email,
                "name": "Fay Ault",
                "company": "Injectors",
                "password_hash": "bcrypt$x",
                "last_ip": "203.0.113.24",
                "created_at": "2024-05-17T10:00:00Z",
                "last_active_at": recent,
                "plan": "pro",
            }
        ],
        "guest_sessions": [
            {
                "session_id": f"gs-{tag}",
                "guest_email": email,
                "display_name": "Fay",
                "ip_address": "198.51.100.7",
                "customer_id": "acme-corp",
                "started_at": recent,
            }
        ],
        "diagnostics": [
            {"user_email": email, "recorded_at": f"{recent[:10]}T0{n}:00:00Z", "ip_address": "203.0.113.24"}
            for n in range(2)
        ],
        "feedback": [
            {"feedback_id": f"fb-{tag}-{n}", "reporter_email": email, "console_log": "chat", "submitted_at": recent}
            for n in range(2)
        ],
        "marketing_contacts": [{"email": email, "name": "Fay", "last_engaged_at": recent}],
        "invoices": [{"invoice_id": f"inv-{tag}", "billing_email": email, "billing_name": "Fay", "issued_at": recent}],
    }


# Failed records are made visible again at once (instead of after the queue's visibility timeout), so
# the functions' timeouts shrink with it: an idempotency lock left by a failed invocation expires
# after the function's timeout, as it would long before a real redelivery.
SHORT_TIMEOUT_MS = 20


@pytest.fixture
def run(aws: Any) -> Invoke:
    """Like `invoke`, with the API and the fulfilment worker given a short timeout (see above)."""
    from lethe_local.functions import LambdaContext, handler
    from lethe_local.template import functions, load_template

    specs = functions(load_template())
    short = {PUBLIC, ADMIN, "FulfilmentWorkerFunction"}

    def call(logical_id: str, event: dict[str, Any]) -> Any:
        spec = specs[logical_id]
        timeout = SHORT_TIMEOUT_MS if logical_id in short else spec.timeout * 1000
        return handler(spec)(event, LambdaContext(function_name=logical_id, timeout_ms=timeout))

    return call


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch, aws: Any) -> None:
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("LETHE_TRANSIENT_RETRY_BASE_MS", "1")  # the backoff's jitter, not its count, is cut
    get_settings.cache_clear()


def code_for(request_id: str) -> str:
    """The code of the verification email for this request (moto's SES backend keeps every message)."""
    import re
    from email import message_from_string, policy

    for raw in reversed(sent_mail()):
        if request_id not in raw.raw_data:
            continue
        message = message_from_string(raw.raw_data, policy=policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        found = re.search(r"verification code is (\d{6})", body.get_content())
        if found:
            return found.group(1)
    raise AssertionError("no code was sent for this request")


def mail_subjects_by_address() -> dict[str, Counter[str]]:
    from email import message_from_string, policy

    by: dict[str, Counter[str]] = {}
    for raw in sent_mail():
        message = message_from_string(raw.raw_data, policy=policy.default)
        by.setdefault(str(message["To"]), Counter())[str(message["Subject"])] += 1
    return by


def all_requests() -> list[Any]:
    from lethe.data.models import RequestSummaryRecord

    return [r for r in RequestSummaryRecord.scan(consistent_read=True) if r.sk == "SUMMARY"]


def statuses_of(request_ids: list[str], injector: Any) -> dict[str, str]:
    """What an operator's dashboard shows (read with faults paused: the observer is not under test)."""
    from lethe.logic.requests import get_request

    injector.enabled = False
    try:
        return {rid: get_request(rid).status.value for rid in request_ids}
    finally:
        injector.enabled = True


def settle(invoke: Invoke, aws: Any, tally: Tally, request_ids: list[str], injector: Any, *, rounds: int = 25) -> None:
    """Drain the work queue; dead letters go to FailedTaskFunction (the request becomes failed); an
    operator retries every failed request. Until nothing is left to do."""
    work, dlq = aws.queue_urls["WorkQueue"], aws.queue_urls["WorkDLQ"]
    for _ in range(rounds):
        poll(invoke, "FulfilmentWorkerFunction", work, tally=tally, label="work queue")
        poll(invoke, "FailedTaskFunction", dlq, tally=tally, label="work DLQ")
        failed = [rid for rid, status in statuses_of(request_ids, injector).items() if status == "failed"]
        if not failed:
            return
        for rid in failed:
            status, body, _ = api(
                invoke,
                ADMIN,
                "POST",
                f"/admin/requests/{rid}/retry",
                resource="/admin/requests/{id}/retry",
                path_parameters={"id": rid},
                headers={"Authorization": f"Bearer {TOKEN}"},
                tally=tally,
            )
            tally.add("operator retries")
            assert status in (200, 409), body
    raise AssertionError("requests kept failing")


def test_requests_of_every_type_end_correctly_under_faults(  # noqa: C901 - one story, counted at the end
    run: Invoke,
    aws: Any,
    admin: None,
    capsys: pytest.CaptureFixture[str],
    sample_event: Callable[[str], dict[str, Any]],
) -> None:
    from lethe.data import audit
    from lethe.data.models import AuditRecord, VaultRecord
    from lethe.keys import key_ring
    from lethe.logic.requests import get_request, list_events
    from lethe.logic.suppression import is_suppressed
    from lethe_local.seed import seed_demo_data

    # Given the demo data and REQUESTS subjects of our own, each with items in every dataset
    invoke = run
    now = datetime.now(UTC)
    seed_demo_data(now=now)
    batch = uuid.uuid4().hex[:6]
    recent = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    subjects = [(f"fi{n:03d}-{batch}@example.org", TYPES[n % len(TYPES)], f"{batch}-{n:03d}") for n in range(REQUESTS)]
    by_dataset: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for email, _, tag in subjects:
        for name, items in subject_items(email, tag, recent).items():
            by_dataset[name] += items
    for name, items in by_dataset.items():
        write_items(name, items)
    before = snapshot()
    tally = Tally()
    request_ids: dict[str, str] = {}

    # When every subject files, verifies and (where a person must) is approved, at 20% faults
    with injecting_faults(RATE, seed=SEED) as injector:
        for n, (email, kind, _) in enumerate(subjects):
            body: dict[str, Any] = {"type": kind, "email": email, "regulation": "gdpr"}
            if kind == "rectification":
                body["corrections"] = {"name": CORRECTED}
            ip = f"198.51.{n // 250}.{n % 250}"
            status, receipt, _ = api(
                invoke, PUBLIC, "POST", "/requests", resource="/requests", body=body, tally=tally, source_ip=ip
            )
            assert status == 202, receipt
            rid = receipt["request_id"]
            request_ids[email] = rid
            status, answer, errors = api(
                invoke,
                PUBLIC,
                "POST",
                f"/requests/{rid}/verify",
                resource="/requests/{id}/verify",
                path_parameters={"id": rid},
                body={"code": code_for(rid)},
                tally=tally,
                source_ip=ip,
            )
            assert status == 200 or (errors and status == 409), answer
            if kind in NEEDS_APPROVAL:
                status, answer, errors = api(
                    invoke,
                    ADMIN,
                    "POST",
                    f"/admin/requests/{rid}/approve",
                    resource="/admin/requests/{id}/approve",
                    path_parameters={"id": rid},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    tally=tally,
                )
                assert status == 200 or (errors and status == 409), answer
        settle(invoke, aws, tally, list(request_ids.values()), injector)
        # The daily deadline watcher, once unverified requests may expire: the leftovers of failed
        # submissions expire, stalled requests are resumed; a failed run is retried (the next day's run).
        from lethe.settings import get_settings

        later = sample_event("deadline.json")
        moment = now + timedelta(days=get_settings().unverified_expiry_days, hours=1)
        later["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        for _ in range(200):
            injector.enabled = False
            open_requests = [r for r in all_requests() if r.status not in TERMINAL | {"failed"}]
            injector.enabled = True
            if not open_requests:
                break
            tally.add("deadline watcher runs")
            try:
                summary = invoke("DeadlineFunction", later)
                tally.add("stalled requests resumed", summary["resumed"])
                tally.add("unverified leftovers expired", summary["expired_unverified"])
            except Exception as exc:  # a failed run; the next one carries on from there
                tally.add(f"deadline watcher runs failed ({type(exc).__name__})")
            settle(invoke, aws, tally, list(request_ids.values()), injector)
        injected = dict(injector.injected)
        # Clients created meanwhile by module-level objects keep the hook: switch it off for good.
        injector.enabled = False

    # Then, with faults off, every request is completed and nothing is stuck anywhere
    stuck = [r for r in all_requests() if r.status not in TERMINAL]
    assert not stuck, (
        f"requests outside a terminal state: {[(r.request_id, r.status, r.type) for r in stuck]} {tally.counts}",
        [(e.kind, e.to_status, e.detail) for e in list_events(stuck[0].request_id)],
        get_request(stuck[0].request_id),
    )
    statuses = Counter(get_request(rid).status.value for rid in request_ids.values())
    assert statuses == Counter({"completed": REQUESTS}), statuses

    # And every item is in the state its request says: nothing lost, nothing applied twice
    after = snapshot()
    ring = key_ring()
    kinds = {email: kind for email, kind, _ in subjects}
    subject_of = {"accounts": "email", "guest_sessions": "guest_email", "diagnostics": "user_email"}
    subject_of |= {"feedback": "reporter_email", "marketing_contacts": "email", "invoices": "billing_email"}
    problems: list[str] = []
    vault = Counter(
        (v.dataset, v.subject_ref) for v in VaultRecord.scan(consistent_read=True) if v.dataset == "invoices"
    )
    for name, items in before.items():
        for key, item in items.items():
            kind = kinds.get(str(item.get(subject_of[name])))
            now_item = after[name].get(key)
            if kind is None:  # demo data of nobody's request: untouched
                if now_item != item:
                    problems.append(f"{name} {key}: a bystander's item changed")
                continue
            email = str(item[subject_of[name]])
            if kind in ("erasure", "child_data_report"):
                if name == "accounts":
                    if now_item is None:
                        problems.append(f"{name} {key}: lost")
                    elif not _erasure_pseudonym(now_item["email"]) or now_item["name"] != "[redacted]":
                        problems.append(f"{name} {key}: not anonymized exactly once: {now_item['email']}")
                elif name == "invoices":
                    if now_item is not None:
                        problems.append(f"{name} {key}: not isolated")
                    if vault[(name, ring.subject_ref(email))] != 1:
                        problems.append(f"{name} {key}: {vault[(name, ring.subject_ref(email))]} vault records")
                elif now_item is not None:
                    problems.append(f"{name} {key}: not deleted")
            elif kind == "restriction":
                rid = request_ids[email]
                if now_item != {**item, "lethe_restricted": rid}:
                    problems.append(f"{name} {key}: not restricted as asked")
            elif kind == "rectification" and name in ("accounts", "marketing_contacts"):
                if now_item != {**item, "name": CORRECTED}:
                    problems.append(f"{name} {key}: not rectified as asked")
            elif now_item != item:
                problems.append(f"{name} {key}: changed by a {kind} request")
    assert not problems, problems[:20]
    for email, kind, _ in subjects:
        if kind in ("erasure", "child_data_report", "objection", "marketing_opt_out", "consent_withdrawal"):
            assert is_suppressed(email), kind

    # And each subject got exactly one final notice where one is due, and no email twice but codes
    mail = mail_subjects_by_address()
    twice = {
        (email, subject): n
        for email, _, _ in subjects
        for subject, n in mail.get(email, Counter()).items()
        if n > 1 and "verification code" not in subject
    }
    assert not twice, twice
    for email, kind, _ in subjects:
        notices = sum(n for s, n in mail.get(email, Counter()).items() if "verification code" not in s)
        if kind in ("access", "portability", "erasure", "child_data_report", "restriction", "rectification"):
            assert notices == 1, (kind, mail.get(email))

    # And the audit holds exactly one record per transition and per dataset done, and verifies
    records = list(AuditRecord.query(audit.CHAIN, consistent_read=True))
    by_request: dict[str, Counter[str]] = {}
    for record in records:
        if record.request_id:
            label = record.action + (f":{record.dataset}" if record.action == "request.dataset_done" else "")
            by_request.setdefault(record.request_id, Counter())[label] += 1
    mismatched: list[str] = []
    for rid in request_ids.values():
        expected = Counter(
            f"request.{e.to_status.value}" for e in list_events(rid) if e.to_status is not None and e.kind != "created"
        )
        done = get_request(rid).datasets_done
        expected.update(f"request.dataset_done:{d}" for d in done)
        # and one per identity round opened (a dataset's links led to other datasets)
        expected.update("request.identities_followed" for e in list_events(rid) if e.kind == "identities_followed")
        got = Counter({k: v for k, v in by_request.get(rid, Counter()).items() if k.startswith("request.")})
        got.pop("request.received", None)
        if got != expected:
            mismatched.append(f"{rid} missing {dict(expected - got)} extra {dict(got - expected)}")
    assert not mismatched, mismatched
    chain = audit.verify()
    assert chain.ok, chain

    with capsys.disabled():
        print(
            f"\n[fault injection, seed {SEED}] {REQUESTS} requests: injected {sum(injected.values())} faults {injected}"
        )
        print(f"[fault injection, seed {SEED}] {dict(tally.counts)}")


@pytest.mark.parametrize(
    ("kind", "write"),
    [
        ("erasure", "lethe.data.datasets.delete_items"),
        ("erasure", "lethe.data.datasets.anonymize_item"),
        ("erasure", "lethe.data.vault.isolate_item"),
        ("restriction", "lethe.data.datasets.update_item"),
        ("access", "lethe.logic.exports.write_part"),
    ],
)
def test_a_worker_killed_between_read_and_write_is_completed_by_redelivery(
    invoke: Invoke, aws: Any, monkeypatch: pytest.MonkeyPatch, kind: str, write: str
) -> None:
    """The worker dies after reading the subject's items and before its first write: the task's
    message is redelivered and the second delivery does the whole task, once."""
    import importlib

    from lethe.data.models import VaultRecord
    from lethe.keys import key_ring
    from lethe.logic import fulfilment
    from lethe.logic.requests import get_request
    from tests.support.fulfilment import new_request

    # Given a subject with items in every dataset and a verified request, started
    email = f"killed-{uuid.uuid4().hex[:8]}@example.org"
    tag = uuid.uuid4().hex[:8]
    recent = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, items in subject_items(email, tag, recent).items():
        write_items(name, items)
    before = snapshot()
    request_id = new_request(kind, email)
    fulfilment.start(request_id)

    # And the first write of the task dies once, as a worker killed at that point would
    module_name, function_name = write.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original = getattr(module, function_name)
    deaths: list[str] = []

    def dies_once(*args: Any, **kwargs: Any) -> Any:
        if not deaths:
            deaths.append(function_name)
            raise RuntimeError("worker killed between the read and the write")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function_name, dies_once)
    # When the work queue is fed to the worker, with failed records redelivered
    tally = Tally()
    poll(invoke, "FulfilmentWorkerFunction", aws.queue_urls["WorkQueue"], tally=tally, label="work queue")

    # Then the death happened, the task was redelivered, and the request completed
    assert deaths == [function_name]
    assert tally.counts["work queue: records failed"] == 1
    assert tally.counts["work queue: redeliveries"] >= 1
    assert get_request(request_id).status.value == "completed"
    # And each item is as the request says, once
    after = snapshot()
    ring = key_ring()
    mine = {
        name: {k: v for k, v in items.items() if email in {str(x) for x in v.values()}}
        for name, items in before.items()
    }
    if kind == "erasure":
        account = next(iter(mine["accounts"]))
        assert _erasure_pseudonym(after["accounts"][account]["email"])
        for name in ("guest_sessions", "diagnostics", "feedback", "marketing_contacts", "invoices"):
            assert not set(mine[name]) & set(after[name]), name
        vault = [v for v in VaultRecord.scan(consistent_read=True) if v.subject_ref == ring.subject_ref(email)]
        assert len(vault) == len(mine["invoices"]) == 1
    elif kind == "restriction":
        for name, items in mine.items():
            for key, item in items.items():
                assert after[name][key] == {**item, "lethe_restricted": request_id}
    else:
        for name, items in mine.items():
            for key, item in items.items():
                assert after[name][key] == item
    notices = [s for s, n in mail_subjects_by_address().get(email, Counter()).items() for _ in range(n)]
    assert len(notices) == 1, notices

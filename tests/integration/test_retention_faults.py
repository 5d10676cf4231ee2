"""The retention sweep under faults: with a seeded 20% of DynamoDB calls failing (throttling, 500s,
read timeouts), a sweep of thousands of expired items ends correctly once the RetentionQueue redelivers
failed tasks, an operator redrives the RetentionDLQ and the day's run is started again where its
planning failed. Then, with faults off, every item and audit record is counted: each expired item
deleted, anonymized or isolated exactly once, held items isolated and never deleted, restricted and
fresh items untouched, and the audit's counts adding up to exactly what changed.

The number of expired items comes from LETHE_FAULT_SWEEP_ITEMS (default 1,000; `make faults` runs
10,000), the seed from
LETHE_FAULT_SEED (default 8) and the rate from LETHE_FAULT_RATE (default 0.2)."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from tests.integration.test_fault_injection import scan
from tests.integration.test_retention import FIXTURE, NOW, TABLES, create_table, event_at, use_inventory
from tests.support.aws_calls import injecting_faults
from tests.support.faults_driver import Tally, poll

Invoke = Callable[..., Any]
ITEMS = int(os.environ.get("LETHE_FAULT_SWEEP_ITEMS", "1000"))
SEED = int(os.environ.get("LETHE_FAULT_SEED", "8"))
RATE = float(os.environ.get("LETHE_FAULT_RATE", "0.2"))
# Share of the expired items per dataset: index + delete, index + anonymize, scan + delete, scan + isolate.
SHARES = {"sessions": 0.4, "profiles": 0.3, "logs": 0.2, "archives": 0.1}
HASH_KEYS = {"sessions": "session_id", "profiles": "profile_id", "logs": "log_id", "archives": "archive_id"}
SINCE = {"sessions": "started_at", "profiles": "last_seen", "logs": "logged_at", "archives": "archived_at"}
SUBJECT = {"sessions": "user_email", "profiles": "email", "logs": "reporter", "archives": "owner"}


@dataclass
class Seeded:
    """What was written, by dataset and key: the expired, held, restricted and fresh items."""

    items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    expired: dict[str, set[str]] = field(default_factory=dict)
    held: dict[str, set[str]] = field(default_factory=dict)
    untouched: dict[str, set[str]] = field(default_factory=dict)

    def add(self, dataset: str, item: dict[str, Any], into: dict[str, set[str]]) -> None:
        key = item[HASH_KEYS[dataset]]
        self.items.setdefault(dataset, {})[key] = item
        into.setdefault(dataset, set()).add(key)


def _since(dataset: str, days_past_due: int) -> Any:
    """A `since` value whose retention ended `days_past_due` days before NOW (1..56: inside the index window)."""
    if dataset == "sessions":
        return (NOW - timedelta(days=30 + days_past_due)).isoformat()
    if dataset == "profiles":  # epoch seconds; P1Y is a calendar year
        return Decimal(int(NOW.replace(year=NOW.year - 1).timestamp()) - days_past_due * 86400)
    if dataset == "logs":
        return (NOW - timedelta(days=90 + days_past_due)).isoformat()
    return (NOW - timedelta(days=366 + days_past_due)).isoformat()


def _item(dataset: str, label: str, subject: str, since: Any, **extra: Any) -> dict[str, Any]:
    item = {HASH_KEYS[dataset]: label, SUBJECT[dataset]: subject, SINCE[dataset]: since, **extra}
    if dataset == "profiles":
        item |= {"name": "Pat Example", "ip_address": "203.0.113.77"}
    if dataset == "logs":
        item["console"] = "a chat line"
    return item


@pytest.fixture
def seeded(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    """The fixture inventory's tables, swept daily until two months ago, holding ITEMS expired items
    plus a held subject's items, restricted items and fresh ones."""
    use_inventory(monkeypatch, FIXTURE)
    monkeypatch.setenv("LETHE_TRANSIENT_RETRY_BASE_MS", "1")  # the backoff's jitter, not its count, is cut
    for name, (hash_key, subject, expiry) in TABLES.items():
        create_table(name, hash_key, subject, expiry)
    from lethe.data import sweeps
    from lethe.data.expiry import expiry_attributes
    from lethe.data.models import bind_models
    from lethe.inventory import get_inventory
    from lethe.logic import legal_holds
    from lethe.settings import get_settings

    bind_models(get_settings())
    for name in ("sessions", "profiles"):
        sweeps.advance_watermark(name, (NOW - timedelta(days=60)).date().isoformat(), now=NOW)
    tag = uuid.uuid4().hex[:6]
    held_email = f"held-{tag}@example.com"
    legal_holds.place(email=held_email, reason="litigation")
    seeded = Seeded()
    n = 0
    for dataset, share in SHARES.items():
        for i in range(round(ITEMS * share)):
            n += 1
            label = f"{dataset[:1]}-{tag}-{i:05d}"
            seeded.add(
                dataset, _item(dataset, label, f"u{n}-{tag}@example.com", _since(dataset, 1 + i % 56)), seeded.expired
            )
        for i in range(10):
            held = _item(dataset, f"{dataset[:1]}-held-{tag}-{i}", held_email, _since(dataset, 1 + i))
            seeded.add(dataset, held, seeded.held)
            restricted = _item(
                dataset, f"{dataset[:1]}-restricted-{tag}-{i}", f"r{i}-{tag}@example.com", _since(dataset, 2 + i)
            )
            seeded.add(dataset, {**restricted, "lethe_restricted": "req_restricted"}, seeded.untouched)
            fresh = _item(dataset, f"{dataset[:1]}-fresh-{tag}-{i}", f"f{i}-{tag}@example.com", _since(dataset, -5 - i))
            seeded.add(dataset, fresh, seeded.untouched)
    ddb = boto3.resource("dynamodb", region_name="us-east-1")
    for dataset, items in seeded.items.items():
        spec = get_inventory().dataset(dataset)
        with ddb.Table(spec.table).batch_writer() as batch:
            for key, item in items.items():
                full = {**item, **expiry_attributes(spec, item)}
                seeded.items[dataset][key] = full
                batch.put_item(Item=full)
    yield seeded


def _live(dataset: str) -> dict[str, dict[str, Any]]:
    from lethe.inventory import get_inventory

    return {item[HASH_KEYS[dataset]]: item for item in scan(get_inventory().dataset(dataset).table)}


def outstanding(seeded: Seeded) -> int:
    """Expired or held items still in the live tables unchanged (read with faults paused)."""
    left = 0
    for dataset in SHARES:
        live = _live(dataset)
        due = seeded.expired.get(dataset, set()) | seeded.held.get(dataset, set())
        for key in due & set(live):
            if dataset != "profiles" or key in seeded.held[dataset] or "lethe_anonymized_at" not in live[key]:
                left += 1
    return left


def redrive(aws: Any, tally: Tally) -> int:
    """What an operator does when the RetentionDLQ alarm fires: move its messages back to the
    RetentionQueue (StartMessageMoveTask in AWS; done message by message here, as moto lacks it)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq, queue = aws.queue_urls["RetentionDLQ"], aws.queue_urls["RetentionQueue"]
    moved = 0
    while messages := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    tally.add("operator redrives of dead letters", moved)
    return moved


def test_a_sweep_of_expired_items_ends_correctly_under_faults(  # noqa: C901 - one story, counted at the end
    seeded: Seeded,
    invoke: Invoke,
    aws: Any,
    sample_event: Callable[[str], dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lethe.data import audit
    from lethe.data.masking import truncate_ip
    from lethe.data.models import AuditRecord, VaultRecord

    tally = Tally()
    event = event_at(sample_event, NOW)
    queue = aws.queue_urls["RetentionQueue"]

    # When the day's sweep runs with 20% of AWS calls failing, is redelivered, redriven from its
    # dead-letter queue, and started again while its planning failed or anything due is left
    with injecting_faults(RATE, seed=SEED) as injector:
        for _ in range(20):
            tally.add("retention runs")
            try:
                invoke("RetentionFunction", event)
            except Exception as exc:  # planning failed: the scheduled rule's retry starts it again
                tally.add(f"retention runs failed ({type(exc).__name__})")
            poll(invoke, "RetentionWorkerFunction", queue, tally=tally, label="retention queue")
            while redrive(aws, tally):
                poll(invoke, "RetentionWorkerFunction", queue, tally=tally, label="retention queue")
            injector.enabled = False
            left = outstanding(seeded)
            injector.enabled = True
            if not left:
                break
        injected = dict(injector.injected)
        injector.enabled = False
    assert outstanding(seeded) == 0

    # Then every expired item was changed exactly once, held items were isolated, the rest untouched
    problems: list[str] = []
    vault = Counter(
        (v.dataset, v.item_key[HASH_KEYS[v.dataset]]["S"], v.reason) for v in VaultRecord.scan(consistent_read=True)
    )
    for dataset in SHARES:
        live = _live(dataset)
        for key in seeded.expired[dataset]:
            before, after = seeded.items[dataset][key], live.get(key)
            if dataset == "profiles":
                expected = {
                    **{k: v for k, v in before.items() if k not in ("expiry_bucket", "expires_on", "email")},
                    "name": "[redacted]",
                    "ip_address": truncate_ip(before["ip_address"]),
                }
                # The email becomes a random token (nothing can recompute it), so its shape is checked.
                if (
                    after is None
                    or {k: v for k, v in after.items() if k not in ("lethe_anonymized_at", "email")} != expected
                    or not str(after.get("email")).startswith("anon:")
                ):
                    problems.append(f"{dataset} {key}: not anonymized exactly once: {after}")
            elif after is not None:
                problems.append(f"{dataset} {key}: still in the live table")
            if dataset == "archives" and vault[(dataset, key, "retention")] != 1:
                problems.append(f"{dataset} {key}: {vault[(dataset, key, 'retention')]} vault records")
        for key in seeded.held[dataset]:
            if key in live or vault[(dataset, key, "legal_hold")] != 1:
                problems.append(f"{dataset} {key}: held item not isolated exactly once")
        for key in seeded.untouched[dataset]:
            if live.get(key) != seeded.items[dataset][key]:
                problems.append(f"{dataset} {key}: changed although fresh or restricted")
    assert not problems, (len(problems), problems[:10])
    assert sum(vault.values()) == len(seeded.expired["archives"]) + sum(len(v) for v in seeded.held.values())

    # And the audit's task records add up to exactly what changed: nothing unrecorded, nothing twice
    audited: dict[str, Counter[str]] = {}
    for record in AuditRecord.query(audit.CHAIN, consistent_read=True):
        if record.action in ("retention.task", "retention.task_failed"):
            audited.setdefault(record.dataset, Counter()).update(record.details["counts"])
            tally.add(f"audit: {record.action}")
    expected_counts = {
        "sessions": {"deleted": len(seeded.expired["sessions"])},
        "profiles": {"anonymized": len(seeded.expired["profiles"])},
        "logs": {"deleted": len(seeded.expired["logs"])},
        "archives": {"isolated": len(seeded.expired["archives"])},
    }
    for dataset, expected in expected_counts.items():
        got = audited.get(dataset, Counter())
        changed = {k: got[k] for k in ("deleted", "anonymized", "isolated", "skipped_under_hold") if got[k]}
        assert changed == {**expected, "skipped_under_hold": len(seeded.held[dataset])}, (dataset, dict(got))
        assert got["conflicts"] == 0, (dataset, dict(got))
    assert audit.verify().ok

    with capsys.disabled():
        print(f"\n[retention faults, seed {SEED}] {ITEMS} expired items: injected {sum(injected.values())} faults")
        print(f"[retention faults, seed {SEED}] {dict(tally.counts)}")

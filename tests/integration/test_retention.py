"""The retention sweep end to end, with a hand-written inventory (tests/fixtures/retention_inventory.yaml):
RetentionFunction plans tasks on the RetentionQueue, RetentionWorkerFunction carries them out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "retention_inventory.yaml"
NOW = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)

# The tables of the fixture inventory: hash key, subject index, and whether it has a retention index.
TABLES = {
    "RetSessions": ("session_id", ("by_user", "user_email"), True),
    "RetProfiles": ("profile_id", ("by_email", "email"), True),
    "RetLogs": ("log_id", ("by_reporter", "reporter"), False),
    "RetArchives": ("archive_id", ("by_owner", "owner"), False),
    "RetContacts": ("email", None, False),
}


def create_table(
    name: str,
    hash_key: str,
    subject: tuple[str, str] | None,
    expiry_index: bool,
    *,
    expiry_projects: list[str] | None = None,
) -> None:
    """A fixture table; the retention index projects keys only, or `expiry_projects` as well."""
    attributes = {hash_key}
    indexes = []
    if subject:
        attributes.add(subject[1])
        indexes.append(
            {
                "IndexName": subject[0],
                "KeySchema": [{"AttributeName": subject[1], "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        )
    if expiry_index:
        attributes |= {"expiry_bucket", "expires_on"}
        indexes.append(
            {
                "IndexName": "by_expiry",
                "KeySchema": [
                    {"AttributeName": "expiry_bucket", "KeyType": "HASH"},
                    {"AttributeName": "expires_on", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": expiry_projects}
                if expiry_projects
                else {"ProjectionType": "KEYS_ONLY"},
            }
        )
    kwargs: dict[str, Any] = {"GlobalSecondaryIndexes": indexes} if indexes else {}
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"}],
        **kwargs,
    )


def use_inventory(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    from lethe.inventory import cached_inventory
    from lethe.settings import get_settings
    from lethe_local.functions import forget_modules

    monkeypatch.setenv("LETHE_INVENTORY", str(path))
    get_settings.cache_clear()
    cached_inventory.cache_clear()
    forget_modules()


def table(name: str) -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(name)


def put(dataset: str, item: dict[str, Any]) -> dict[str, Any]:
    """Write an item as the owning service would, with its expiry attributes when the dataset has an index."""
    from lethe.data.expiry import expiry_attributes
    from lethe.inventory import get_inventory

    spec = get_inventory().dataset(dataset)
    full = {**item, **expiry_attributes(spec, item)}
    table(spec.table).put_item(Item=full)
    return full


def keys_in(table_name: str, hash_key: str) -> set[str]:
    return {i[hash_key] for i in table(table_name).scan(ConsistentRead=True)["Items"]}


def event_at(sample_event: Callable[[str], dict[str, Any]], moment: datetime) -> dict[str, Any]:
    event = sample_event("retention.json")
    event["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def sweep(invoke: Callable[..., Any], aws: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Run RetentionFunction, then feed the RetentionQueue to RetentionWorkerFunction until it is
    drained, as Lambda's event source mapping would. Returns the planner's summary."""
    from lethe_local.events import sqs_event

    summary = invoke("RetentionFunction", event)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = aws.queue_urls["RetentionQueue"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return summary  # type: ignore[no-any-return]
        result = invoke("RetentionWorkerFunction", sqs_event(messages, arn))
        assert result == {"batchItemFailures": []}
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def task_counts(run_id: str) -> dict[str, dict[str, int]]:
    """The counts the run's tasks wrote to the audit, summed per dataset."""
    from lethe.data.models import AuditRecord

    totals: dict[str, dict[str, int]] = {}
    for record in AuditRecord.query("main"):
        if record.action != "retention.task" or record.details["run_id"] != run_id:
            continue
        into = totals.setdefault(record.dataset, {})
        for name, value in record.details["counts"].items():
            into[name] = into.get(name, 0) + value
    return totals


def ago(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@dataclass
class Seeded:
    held_email: str
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def fixture_stack(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    """The fixture inventory's tables, holding fresh, expired, held and restricted items."""
    use_inventory(monkeypatch, FIXTURE)
    for name, (hash_key, subject, expiry) in TABLES.items():
        create_table(name, hash_key, subject, expiry)
    from lethe.data.models import bind_models
    from lethe.logic import legal_holds
    from lethe.settings import get_settings

    bind_models(get_settings())
    from lethe.data import sweeps

    # The index datasets have been swept daily until two months ago: this run takes the index path.
    for name in ("sessions", "profiles"):
        sweeps.advance_watermark(name, (NOW - timedelta(days=60)).date().isoformat(), now=NOW)
    tag = uuid.uuid4().hex[:8]
    seeded = Seeded(held_email=f"held-{tag}@example.com")
    legal_holds.place(email=seeded.held_email, reason="litigation")
    ids = seeded.ids

    def new(label: str) -> str:
        ids[label] = f"{label}-{tag}"
        return ids[label]

    # sessions (index, delete after P30D)
    for n in range(4):
        put(
            "sessions",
            {"session_id": new(f"s-old{n}"), "user_email": f"u{n}-{tag}@example.com", "started_at": ago(45 + n)},
        )
    put("sessions", {"session_id": new("s-fresh"), "user_email": f"f-{tag}@example.com", "started_at": ago(5)})
    put("sessions", {"session_id": new("s-held"), "user_email": seeded.held_email, "started_at": ago(60)})
    put(
        "sessions",
        {
            "session_id": new("s-restricted"),
            "user_email": f"r-{tag}@example.com",
            "started_at": ago(60),
            "lethe_restricted": True,
        },
    )
    # profiles (index, anonymize after P1Y; since in epoch seconds)
    epoch = int((NOW - timedelta(days=400)).timestamp())
    put(
        "profiles",
        {
            "profile_id": new("p-old"),
            "email": f"p-{tag}@example.com",
            "name": "Pat Old",
            "ip_address": "203.0.113.77",
            "last_seen": Decimal(epoch),
        },
    )
    put(
        "profiles",
        {
            "profile_id": new("p-fresh"),
            "email": f"pf-{tag}@example.com",
            "name": "Pat Fresh",
            "last_seen": Decimal(int((NOW - timedelta(days=10)).timestamp())),
        },
    )
    # logs (scan, delete after P90D; since as ISO or epoch)
    put(
        "logs",
        {"log_id": new("l-old-iso"), "reporter": f"l1-{tag}@example.com", "console": "hi", "logged_at": ago(100)},
    )
    put(
        "logs",
        {
            "log_id": new("l-old-epoch"),
            "reporter": f"l2-{tag}@example.com",
            "logged_at": Decimal(int((NOW - timedelta(days=120)).timestamp())),
        },
    )
    put("logs", {"log_id": new("l-fresh"), "reporter": f"l3-{tag}@example.com", "logged_at": ago(10)})
    put(
        "logs",
        {
            "log_id": new("l-restricted"),
            "reporter": f"l4-{tag}@example.com",
            "logged_at": ago(200),
            "lethe_restricted": True,
        },
    )
    put("logs", {"log_id": new("l-held"), "reporter": seeded.held_email, "logged_at": ago(200)})
    # archives (scan, isolate after P1Y)
    put("archives", {"archive_id": new("a-old"), "owner": f"a-{tag}@example.com", "archived_at": ago(500)})
    put("archives", {"archive_id": new("a-fresh"), "owner": f"a2-{tag}@example.com", "archived_at": ago(30)})
    put("contacts", {"email": f"c-{tag}@example.com"})
    yield seeded


EXPECTED_FIRST = {
    "sessions": {
        "path": "index",
        "would_delete": 4,
        "would_anonymize": 0,
        "would_isolate": 0,
        "skipped_under_hold": 1,
        "skipped_restricted": 1,
    },
    "profiles": {
        "path": "index",
        "would_delete": 0,
        "would_anonymize": 1,
        "would_isolate": 0,
        "skipped_under_hold": 0,
        "skipped_restricted": 0,
    },
    "logs": {
        "path": "scan",
        "would_delete": 2,
        "would_anonymize": 0,
        "would_isolate": 0,
        "skipped_under_hold": 1,
        "skipped_restricted": 1,
    },
    "archives": {
        "path": "scan",
        "would_delete": 0,
        "would_anonymize": 0,
        "would_isolate": 1,
        "skipped_under_hold": 0,
        "skipped_restricted": 0,
    },
}


def _report_counts(report: Any) -> dict[str, dict[str, Any]]:
    keys = ("path", "would_delete", "would_anonymize", "would_isolate", "skipped_under_hold", "skipped_restricted")
    return {name: {k: getattr(entry, k) for k in keys} for name, entry in report.datasets.items()}


def _as_report(counts: dict[str, dict[str, int]], paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "path": paths[name],
            "would_delete": c.get("deleted", 0),
            "would_anonymize": c.get("anonymized", 0),
            "would_isolate": c.get("isolated", 0),
            "skipped_under_hold": c.get("skipped_under_hold", 0),
            "skipped_restricted": c.get("skipped_restricted", 0),
        }
        for name, c in counts.items()
    }


def test_dry_run_matches_the_real_run_count_for_count(
    fixture_stack: Seeded, invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic import retention

    # Given the fixture data, When the dry run is asked for the sweep's moment
    dry = _report_counts(retention.report(NOW))

    # Then it predicts per dataset what the inventory says, and names the scan datasets' missing index
    assert dry == EXPECTED_FIRST
    assert "contacts" not in dry
    report = retention.report(NOW)
    assert report.datasets["logs"].suggestion is not None and "expiry_bucket" in report.datasets["logs"].suggestion
    assert report.datasets["sessions"].suggestion is None

    # When the real run happens, Then its tasks did exactly that, count for count
    summary = sweep(invoke, aws, event_at(sample_event, NOW))
    assert summary["scan_datasets"] == ["archives", "logs"]
    assert _as_report(task_counts(summary["run_id"]), summary["paths"]) == dry


def test_the_sweep_applies_each_action_and_spares_fresh_held_and_restricted_items(
    fixture_stack: Seeded, invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.data import vault
    from lethe.keys import key_ring

    ids = fixture_stack.ids
    # When the sweep runs
    sweep(invoke, aws, event_at(sample_event, NOW))

    # Then expired sessions and logs are deleted; fresh and restricted ones stay
    assert keys_in("RetSessions", "session_id") == {ids["s-fresh"], ids["s-restricted"]}
    assert keys_in("RetLogs", "log_id") == {ids["l-fresh"], ids["l-restricted"]}
    # And held items left the live tables for the vault, with the hold recorded, never deleted
    held_ref = key_ring().subject_ref(fixture_stack.held_email)
    entries = list(vault.entries_for_subject([held_ref]))
    assert sorted(e.item_key.get("session_id") or e.item_key.get("log_id") for e in entries) == sorted(
        [ids["s-held"], ids["l-held"]]
    )
    assert all(e.reason == "legal_hold" and e.hold_ids for e in entries)
    # And the expired profile is anonymized in place and left the retention index; the fresh one is untouched
    old = table("RetProfiles").get_item(Key={"profile_id": ids["p-old"]})["Item"]
    assert old["name"] == "[redacted]" and old["email"].startswith("anon:") and old["ip_address"] == "203.0.113.0"
    assert "expiry_bucket" not in old and "expires_on" not in old and "lethe_anonymized_at" in old
    fresh = table("RetProfiles").get_item(Key={"profile_id": ids["p-fresh"]})["Item"]
    assert fresh["name"] == "Pat Fresh"
    # And the expired archive is isolated for the isolation period, the fresh one stays
    assert keys_in("RetArchives", "archive_id") == {ids["a-fresh"]}
    archived = [e for e in vault.entries_for_subject([key_ring().subject_ref(f"a-{ids['a-old'][6:]}@example.com")])]
    assert [e.reason for e in archived] == ["retention"]
    assert archived[0].purge_at == (NOW + timedelta(days=30)).isoformat()


def test_a_second_run_changes_nothing(
    fixture_stack: Seeded, invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic import retention

    # Given a completed sweep
    sweep(invoke, aws, event_at(sample_event, NOW))
    before = {
        name: sorted(json.dumps(i, default=str, sort_keys=True) for i in table(name).scan()["Items"]) for name in TABLES
    }
    vault_before = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="VaultTable")["Count"]

    # When the same day is swept again
    summary = sweep(invoke, aws, event_at(sample_event, NOW + timedelta(hours=1)))

    # Then no table changed, the tasks counted nothing to do, and the dry run agrees
    after = {
        name: sorted(json.dumps(i, default=str, sort_keys=True) for i in table(name).scan()["Items"]) for name in TABLES
    }
    assert after == before
    assert boto3.client("dynamodb", region_name="us-east-1").scan(TableName="VaultTable")["Count"] == vault_before
    for counts in task_counts(summary["run_id"]).values():
        assert counts["deleted"] == counts["anonymized"] == counts["isolated"] == counts["skipped_under_hold"] == 0
    assert all(
        (e.would_delete, e.would_anonymize, e.would_isolate, e.skipped_under_hold) == (0, 0, 0, 0)
        for e in retention.report(NOW + timedelta(hours=2)).datasets.values()
    )


def test_a_run_dated_months_ahead_sweeps_what_is_due_then(
    fixture_stack: Seeded, invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic import retention

    ids = fixture_stack.ids
    # Given today's sweep is done
    sweep(invoke, aws, event_at(sample_event, NOW))
    later = NOW + timedelta(days=400)

    # When the dry run and then the run are dated 400 days ahead
    dry = _report_counts(retention.report(later))
    summary = sweep(invoke, aws, event_at(sample_event, later))

    # Then what became due meanwhile goes, restricted items still stay, and the dry run was exact
    assert keys_in("RetSessions", "session_id") == {ids["s-restricted"]}
    assert keys_in("RetLogs", "log_id") == {ids["l-restricted"]}
    assert keys_in("RetArchives", "archive_id") == set()
    fresh = table("RetProfiles").get_item(Key={"profile_id": ids["p-fresh"]})["Item"]
    assert fresh["name"] == "[redacted]"
    assert dry["sessions"]["would_delete"] == 1 and dry["profiles"]["would_anonymize"] == 1
    assert _as_report(task_counts(summary["run_id"]), summary["paths"]) == dry


def test_report_route_answers_the_dry_run(
    fixture_stack: Seeded, invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.settings import get_settings
    from lethe_local.events import api_event

    monkeypatch.setenv("LETHE_ADMIN_TOKEN", "t-retention-report")
    get_settings.cache_clear()
    headers = {"Authorization": "Bearer t-retention-report"}

    # When an operator asks for the report at the sweep's moment
    response = invoke(
        "AdminApiFunction",
        api_event("GET", "/admin/retention/report", query={"at": ["2026-11-22T02:15:00Z"]}, headers=headers),
    )

    # Then it answers the dry run, per dataset
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["complete"], body  # read to the end within the call's time
    assert body["datasets"]["sessions"]["would_delete"] == 4
    assert body["datasets"]["logs"]["path"] == "scan"

    # And a malformed time is a 4xx in the error schema, not a 5xx
    bad = invoke(
        "AdminApiFunction", api_event("GET", "/admin/retention/report", query={"at": ["soon"]}, headers=headers)
    )
    assert bad["statusCode"] == 422
    assert json.loads(bad["body"])["error"]["code"] == "invalid_request"


def test_the_first_sweep_of_an_index_dataset_is_a_backfill_by_scan(
    fixture_stack: Seeded, invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.data.models import ControlRecord
    from lethe.logic import retention

    # Given sessions were never swept, and one expired long before any sweep window
    ControlRecord("SWEEP", "sessions").delete()
    ancient = f"s-ancient-{uuid.uuid4().hex[:8]}"
    put("sessions", {"session_id": ancient, "user_email": f"{ancient}@example.com", "started_at": ago(900)})

    # When the dry run and the run happen
    dry = retention.report(NOW).datasets["sessions"]
    summary = sweep(invoke, aws, event_at(sample_event, NOW))

    # Then the first sweep scanned the table once (and found the ancient item), and the next takes the index
    assert (dry.path, dry.backfill, dry.would_delete) == ("scan", True, 5)
    assert summary["paths"]["sessions"] == "scan"
    assert ancient not in keys_in("RetSessions", "session_id")
    after = retention.report(NOW).datasets["sessions"]
    assert (after.path, after.backfill, after.would_delete) == ("index", False, 0)


def test_a_delete_index_that_projects_what_it_decides_on_spares_the_item_reads(
    aws: Any, invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.data import sweeps
    from lethe.data.models import bind_models
    from lethe.logic import legal_holds
    from lethe.settings import get_settings

    # Given sessions whose retention index projects since, the subject and the restriction mark
    use_inventory(monkeypatch, FIXTURE)
    for name, (hash_key, subject, expiry) in TABLES.items():
        projects = ["started_at", "user_email", "lethe_restricted"] if name == "RetSessions" else None
        create_table(name, hash_key, subject, expiry, expiry_projects=projects)
    bind_models(get_settings())
    sweeps.advance_watermark("sessions", (NOW - timedelta(days=60)).date().isoformat(), now=NOW)
    tag = uuid.uuid4().hex[:8]
    held = f"held-{tag}@example.com"
    legal_holds.place(email=held, reason="litigation")
    ids = {label: f"{label}-{tag}" for label in ("old1", "old2", "held", "restricted", "fresh", "meanwhile")}
    for label in ("old1", "old2", "meanwhile"):
        put("sessions", {"session_id": ids[label], "user_email": f"{label}-{tag}@example.com", "started_at": ago(45)})
    put("sessions", {"session_id": ids["held"], "user_email": held, "started_at": ago(50)})
    put("sessions", {"session_id": ids["restricted"], "user_email": f"r-{tag}@x.org", "started_at": ago(50)})
    table("RetSessions").update_item(
        Key={"session_id": ids["restricted"]},
        UpdateExpression="SET lethe_restricted = :r",
        ExpressionAttributeValues={":r": "req_1"},
    )
    put("sessions", {"session_id": ids["fresh"], "user_email": f"f-{tag}@x.org", "started_at": ago(3)})

    # And one item is restricted after the index page is read and before the sweep acts on it
    read_from_table: list[str] = []
    original_page, original_get = sweeps.index_page, sweeps.get_items

    def page_then_restrict(dataset: Any, *args: Any, **kwargs: Any) -> Any:
        page = original_page(dataset, *args, **kwargs)
        if dataset.name == "sessions" and any(i["session_id"] == ids["meanwhile"] for i in page.items):
            table("RetSessions").update_item(
                Key={"session_id": ids["meanwhile"]},
                UpdateExpression="SET lethe_restricted = :r",
                ExpressionAttributeValues={":r": "req_2"},
            )
        return page

    def get_items(dataset: Any, keys: Any) -> Any:
        read_from_table.append(dataset.name)
        return original_get(dataset, keys)

    monkeypatch.setattr(sweeps, "index_page", page_then_restrict)
    monkeypatch.setattr(sweeps, "get_items", get_items)

    # When the sweep runs
    summary = sweep(invoke, aws, event_at(sample_event, NOW))

    # Then the sessions were decided on from the index alone, without reading the items
    assert summary["paths"]["sessions"] == "index"
    assert "sessions" not in read_from_table
    # And the expired ones are gone, the held one isolated, the restricted and fresh ones kept
    assert keys_in("RetSessions", "session_id") == {ids["restricted"], ids["fresh"], ids["meanwhile"]}
    # And the item restricted meanwhile was refused by the delete's condition, and counted as a conflict
    counts = task_counts(summary["run_id"])["sessions"]
    assert (counts["deleted"], counts["skipped_under_hold"], counts["skipped_restricted"], counts["conflicts"]) == (
        2,
        1,
        1,
        1,
    )


def test_a_run_reads_every_watermark_in_one_query(
    fixture_stack: Seeded, invoke: Callable[..., Any], aws: Any, sample_event: Callable[[str], dict[str, Any]]
) -> None:
    from lethe.logic import retention
    from lethe.settings import get_settings
    from tests.support.aws_calls import hooked_clients

    # Given both index datasets were swept once, so each has a watermark
    sweep(invoke, aws, event_at(sample_event, NOW))
    control = get_settings().control_table
    watermark_reads: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == control:
            watermark_reads.append(params)

    # When the next day's run is planned
    with hooked_clients("provide-client-params.dynamodb.Query", record):
        tasks = retention.plan(NOW + timedelta(days=1), "run_next_day")

    # Then both are planned from their watermarks, which the plan read in one Query, not one per dataset
    assert {t.dataset for t in tasks if t.path == "index"} == {"sessions", "profiles"}
    assert len(watermark_reads) == 1, watermark_reads

"""Demo data for the service tables of the default inventory (local stack and tests).

Four named subjects show each part of Lethe (the README documents them), and twenty filler subjects
keep the tables from being trivial. Times are relative to the start of today (UTC), so every item's
key is stable within a day and seeding twice writes nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from lethe.data.expiry import expiry_attributes
from lethe.inventory import Inventory, get_inventory
from lethe.settings import get_settings


@dataclass(frozen=True)
class DemoSubject:
    email: str
    name: str
    story: str


DEMO_SUBJECTS = (
    DemoSubject(
        "ada@example.com",
        "Ada Lovelace",
        "account holder: 2 invoices (one past its 7-year statutory end), feedback, diagnostics, marketing, "
        "2 hosted meetings (found only through her account id)",
    ),
    DemoSubject(
        "grace@example.com",
        "Grace Hopper",
        "guest of customer acme-corp: 3 guest sessions (two past 30 days), 1 diagnostics row",
    ),
    DemoSubject(
        "linus@example.com",
        "Linus Torvalds",
        "account holder: 1 recent invoice, marketing contact, 1 hosted meeting (through his account id)",
    ),
    DemoSubject(
        "alan@example.com", "Alan Turing", "account inactive for 3 years (past the 2-year retention), old feedback"
    ),
    DemoSubject(
        "margaret@example.com",
        "Margaret Hamilton",
        "account holder: 1 recorded meeting, whose recording is in Microsoft Azure storage (a manual dataset)",
    ),
)
FILLER_SUBJECTS = 20


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def demo_items(today: datetime) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dataset name, item) for every demo item, with times counted back from `today` (midnight UTC)."""

    def ago(days: int, hours: int = 9) -> str:
        return _iso(today - timedelta(days=days) + timedelta(hours=hours))

    # Ada: a customer of long standing.
    yield (
        "accounts",
        _account(
            "acct-ada",
            "ada@example.com",
            "Ada Lovelace",
            "Analytical Engines Ltd",
            last_ip="203.0.113.24",
            created_at=ago(3200),
            last_active_at=ago(2),
        ),
    )
    yield "invoices", _invoice("inv-ada-2018", "ada@example.com", "Ada Lovelace", ago(8 * 365 + 10), 12_000)
    yield "invoices", _invoice("inv-ada-recent", "ada@example.com", "Ada Lovelace", ago(20), 4_800)
    yield "feedback", _feedback("fb-ada-old", "ada@example.com", ago(240), "Firefox 128")
    yield "feedback", _feedback("fb-ada-new", "ada@example.com", ago(12), "Firefox 133")
    for days, system in ((120, "Windows 11"), (30, "macOS 14"), (1, "macOS 15")):
        yield "diagnostics", _diagnostics("ada@example.com", ago(days), "203.0.113.24", system)
    yield "marketing_contacts", _marketing("ada@example.com", "Ada Lovelace", ago(900), ago(14))
    # Meetings carry no email: they are found through the account id that her account links to.
    yield "meetings", _meeting("mtg-ada-board", "acct-ada", "Board review: Q3 engine budget", ago(45), 6)
    yield "meetings", _meeting("mtg-ada-weekly", "acct-ada", "Weekly design sync", ago(3), 4)

    # Grace: a guest invited by a customer; the customer is the controller of her session data.
    for number, days in enumerate((75, 40, 3), start=1):
        yield "guest_sessions", _guest_session(f"gs-grace-{number}", "grace@example.com", "Grace Hopper", ago(days))
    yield "diagnostics", _diagnostics("grace@example.com", ago(3), "198.51.100.7", "Linux")

    # Linus: a recent account holder who reads the newsletter.
    yield (
        "accounts",
        _account(
            "acct-linus",
            "linus@example.com",
            "Linus Torvalds",
            "Kernel Co-op",
            last_ip="192.0.2.91",
            created_at=ago(400),
            last_active_at=ago(5),
        ),
    )
    yield "invoices", _invoice("inv-linus-recent", "linus@example.com", "Linus Torvalds", ago(35), 2_400)
    yield "marketing_contacts", _marketing("linus@example.com", "Linus Torvalds", ago(380), ago(40))
    yield "meetings", _meeting("mtg-linus-release", "acct-linus", "Release planning", ago(10), 12)

    # Margaret: her meeting was recorded, so a request for her also waits for the Azure storage team.
    yield (
        "accounts",
        _account(
            "acct-margaret",
            "margaret@example.com",
            "Margaret Hamilton",
            "Apollo Guidance",
            last_ip="192.0.2.69",
            created_at=ago(700),
            last_active_at=ago(1),
        ),
    )
    recorded = _meeting("mtg-margaret-review", "acct-margaret", "Guidance software review", ago(6), 5)
    yield "meetings", {**recorded, "recording_account_id": "acct-margaret"}

    # Alan: gone quiet three years ago.
    yield (
        "accounts",
        _account(
            "acct-alan",
            "alan@example.com",
            "Alan Turing",
            "Bletchley Computing",
            last_ip="198.51.100.200",
            created_at=ago(2000),
            last_active_at=ago(3 * 365 + 20),
        ),
    )
    yield "feedback", _feedback("fb-alan-old", "alan@example.com", ago(3 * 365 + 30), "Chrome 96")

    yield from _filler(ago)


def _filler(ago: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Subjects user001..user020@example.net; about a third of each kind of item is past retention."""
    for n in range(1, FILLER_SUBJECTS + 1):
        email = f"user{n:03d}@example.net"
        name = f"Demo User {n:03d}"
        yield (
            "accounts",
            _account(
                f"acct-user{n:03d}",
                email,
                name,
                f"Filler Company {n % 5}",
                last_ip=f"203.0.113.{n + 100}",
                created_at=ago(1000 + n * 10),
                last_active_at=ago(n * 55),  # n >= 14 is past two years
            ),
        )
        system = ("Linux", "Windows 11", "macOS 15")[n % 3]
        yield "diagnostics", _diagnostics(email, ago(n * 7), f"198.51.100.{n}", system)
        if n % 2 == 0:
            yield "feedback", _feedback(f"fb-user{n:03d}", email, ago(n * 15), "Edge 130")
        if n % 3 == 0:
            yield "guest_sessions", _guest_session(f"gs-user{n:03d}", email, name, ago(n * 3))
        if n % 4 == 0:
            yield "invoices", _invoice(f"inv-user{n:03d}", email, name, ago(n * 160), 1_000 + n)
        if n % 5 == 0:
            yield "marketing_contacts", _marketing(email, name, ago(n * 60), ago(n * 55))
        if n % 2 == 1:
            yield "meetings", _meeting(f"mtg-user{n:03d}", f"acct-user{n:03d}", f"Team call {n}", ago(n * 25), 3)


def _account(
    account_id: str,
    email: str,
    name: str,
    company: str,
    *,
    last_ip: str,
    created_at: str,
    last_active_at: str,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "email": email,
        # What the service stores beside the address so that a controller's hashed identity finds it.
        "email_sha256": hashlib.sha256(email.strip().lower().encode()).hexdigest(),
        "name": name,
        "company": company,
        # A placeholder in the shape of an argon2id hash: sensitive, never a real credential.
        "password_hash": f"$argon2id$v=19$m=65536,t=3,p=4${account_id}$ZGVtby1vbmx5",
        "last_ip": last_ip,
        "created_at": created_at,
        "last_active_at": last_active_at,
    }


def _marketing(email: str, name: str, opted_in_at: str, last_engaged_at: str) -> dict[str, Any]:
    return {"email": email, "name": name, "opted_in_at": opted_in_at, "last_engaged_at": last_engaged_at}


def _invoice(invoice_id: str, email: str, name: str, issued_at: str, amount_cents: int) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "billing_email": email,
        "billing_name": name,
        "billing_address": "1 Example Street, London, UK",
        "issued_at": issued_at,
        "amount_cents": amount_cents,
        "currency": "GBP",
    }


def _feedback(feedback_id: str, email: str, submitted_at: str, browser: str) -> dict[str, Any]:
    return {
        "feedback_id": feedback_id,
        "reporter_email": email,
        "submitted_at": submitted_at,
        "console_log": "[chat] Can everyone hear me? / [warn] ICE candidate timeout / [chat] Audio drops again",
        "ip_address": "203.0.113.55",
        "browser": browser,
    }


def _meeting(meeting_id: str, host_account_id: str, topic: str, started_at: str, participants: int) -> dict[str, Any]:
    return {
        "meeting_id": meeting_id,
        "host_account_id": host_account_id,
        "topic": topic,
        "started_at": started_at,
        "participants": participants,
    }


def _diagnostics(email: str, recorded_at: str, ip: str, system: str) -> dict[str, Any]:
    return {
        "user_email": email,
        "recorded_at": recorded_at,
        "ip_address": ip,
        "operating_system": system,
        "browser": "Chrome 131",
        "packet_loss_pct": 2,
    }


def _guest_session(session_id: str, email: str, name: str, started_at: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "guest_email": email,
        "display_name": name,
        "customer_id": "acme-corp",
        "meeting_id": f"mtg-{session_id}",
        "ip_address": "198.51.100.7",
        "cookie_token": f"ck_{session_id.replace('-', '')}_local",
        "started_at": started_at,
    }


def seed_demo_data(
    inventory: Inventory | None = None, *, now: datetime | None = None, dynamodb: Any = None
) -> dict[str, int]:
    """Write the demo items into the tables the inventory names; returns items written per dataset.

    Datasets missing from the inventory are skipped. An item whose key already exists is left as it
    is, so seeding twice writes nothing the second time.
    """
    inventory = inventory or get_inventory()
    settings = get_settings()
    moment = now or datetime.now(UTC)
    today = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    dynamodb = dynamodb or boto3.resource("dynamodb", region_name=settings.region)
    by_table: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for dataset_name, item in demo_items(today):
        dataset = inventory.datasets.get(dataset_name)
        if dataset is None:
            continue
        full = {**item, **expiry_attributes(dataset, item)}
        by_table.setdefault(settings.table_name(dataset.table), []).append((dataset_name, full))
    written: dict[str, int] = {}
    for table_name, entries in by_table.items():
        table = dynamodb.Table(table_name)
        key_names = [k["AttributeName"] for k in table.key_schema]
        existing = _existing_keys(dynamodb, table_name, key_names, [item for _, item in entries])
        with table.batch_writer(overwrite_by_pkeys=key_names) as batch:
            for dataset_name, item in entries:
                if tuple(item[k] for k in key_names) in existing:
                    continue
                batch.put_item(Item=item)
                written[dataset_name] = written.get(dataset_name, 0) + 1
    return written


def _existing_keys(
    dynamodb: Any, table_name: str, key_names: list[str], items: list[dict[str, Any]]
) -> set[tuple[Any, ...]]:
    """The keys among `items` that the table already holds (BatchGetItem, 100 keys at a time)."""
    keys = list({tuple(item[k] for k in key_names): None for item in items})
    found: set[tuple[Any, ...]] = set()
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {
            table_name: {
                "Keys": [dict(zip(key_names, key, strict=True)) for key in keys[start : start + 100]],
                "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(key_names))),
                "ExpressionAttributeNames": {f"#k{i}": name for i, name in enumerate(key_names)},
            }
        }
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(table_name, []):
                found.add(tuple(item[k] for k in key_names))
            request = response.get("UnprocessedKeys") or {}
    return found


# ---------------------------------------------------------------- S3: Send-Feedback console logs


def feedback_log_objects(today: datetime) -> dict[str, list[dict[str, Any]]]:
    """The demo JSON Lines logs (object key -> rows): each upload mixes the console output of several
    subjects, as a support tool batching logs would. Ada has rows in two objects (one row past the
    180-day retention), Alan one old row, and fillers the rest."""

    def ago(days: int) -> str:
        return _iso(today - timedelta(days=days) + timedelta(hours=9))

    def row(email: str, days: int, chat: str, ip: str) -> dict[str, Any]:
        return {
            "reporter_email": email,
            "submitted_at": ago(days),
            "level": "info",
            "console_log": f"[chat] {chat}",
            "ip_address": ip,
        }

    def filler(n: int, days: int) -> dict[str, Any]:
        return row(f"user{n:03d}@example.net", days, f"filler message {n}", f"198.51.100.{n}")

    return {
        "console-logs/2026/batch-001.jsonl": [
            row("ada@example.com", 240, "my home address is 12 St James's Square", "203.0.113.24"),
            filler(2, 230),
            filler(4, 220),
            row("alan@example.com", 3 * 365, "the bombe keeps stopping at step 7", "203.0.113.99"),
        ],
        "console-logs/2026/batch-002.jsonl": [
            filler(6, 20),
            row("ada@example.com", 12, "the screen share froze on the engine diagrams", "203.0.113.24"),
            filler(8, 15),
        ],
        "console-logs/2026/batch-003.jsonl": [filler(10, 5), filler(12, 3), filler(14, 1)],
    }


def seed_feedback_logs(
    inventory: Inventory | None = None, *, now: datetime | None = None, s3: Any = None
) -> dict[str, int]:
    """Write the demo feedback logs into the bucket of the inventory's `feedback_logs` dataset (rows
    written per dataset). An object that already exists is left as it is. Skipped without the dataset."""
    import json

    inventory = inventory or get_inventory()
    dataset = inventory.datasets.get("feedback_logs")
    if dataset is None or dataset.bucket is None:
        return {}
    settings = get_settings()
    bucket = settings.bucket_name(dataset.bucket)
    s3 = s3 or boto3.client("s3", region_name=settings.region)
    today = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = 0
    for key, lines in feedback_log_objects(today).items():
        existing = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        if any(item["Key"] == key for item in existing):
            continue
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        rows += len(lines)
    return {"feedback_logs": rows} if rows else {}

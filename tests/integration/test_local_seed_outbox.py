"""The local stack's demo data and outbox, against moto in process."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from lethe_local.outbox import Outbox
from lethe_local.seed import DEMO_SUBJECTS, seed_demo_data

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


def items(table: str, **key: str) -> list[dict[str, Any]]:
    ((index_attr, value),) = key.items()
    found = boto3.resource("dynamodb", region_name="us-east-1").Table(table)
    indexes = {i["KeySchema"][0]["AttributeName"]: i["IndexName"] for i in found.global_secondary_indexes or []}
    if index_attr in indexes:
        return found.query(IndexName=indexes[index_attr], KeyConditionExpression=Key(index_attr).eq(value))["Items"]
    return found.query(KeyConditionExpression=Key(index_attr).eq(value))["Items"]


def expired(item: dict[str, Any]) -> bool:
    return datetime.fromisoformat(item["expires_on"]) <= NOW


def test_seeding_writes_the_documented_subjects(aws: Any) -> None:
    # When
    written = seed_demo_data(now=NOW)

    # Then every demo dataset got items
    assert set(written) == {
        "accounts",
        "guest_sessions",
        "diagnostics",
        "feedback",
        "marketing_contacts",
        "invoices",
        "meetings",
    }
    assert [s.email for s in DEMO_SUBJECTS] == [
        "ada@example.com",
        "grace@example.com",
        "linus@example.com",
        "alan@example.com",
        "margaret@example.com",
    ]
    # Ada: one invoice past its statutory end and one not; feedback and diagnostics, one of each old
    invoices = items("InvoicesTable", billing_email="ada@example.com")
    assert sorted(expired(i) for i in invoices) == [False, True]
    assert sorted(expired(f) for f in items("FeedbackTable", reporter_email="ada@example.com")) == [False, True]
    assert len(items("DiagnosticsTable", user_email="ada@example.com")) == 3
    assert items("AccountsTable", email="ada@example.com")[0]["company"] == "Analytical Engines Ltd"
    # Ada's meetings carry no email: only her account id, which her account links to
    meetings = items("MeetingsTable", host_account_id="acct-ada")
    assert len(meetings) == 2 and not any("ada@example.com" in str(m) for m in meetings)
    # Grace: three guest sessions for acme-corp, two of them past 30 days
    sessions = items("GuestSessionsTable", guest_email="grace@example.com")
    assert {s["customer_id"] for s in sessions} == {"acme-corp"}
    assert sorted(expired(s) for s in sessions) == [False, True, True]
    # Alan: his account is past the two-year retention
    (alan,) = items("AccountsTable", email="alan@example.com")
    assert expired(alan)
    # Linus: a recent invoice and a marketing contact
    assert [expired(i) for i in items("InvoicesTable", billing_email="linus@example.com")] == [False]
    assert len(items("MarketingContactsTable", email="linus@example.com")) == 1


def test_filler_subjects_mix_fresh_and_expired_accounts(aws: Any) -> None:
    seed_demo_data(now=NOW)

    accounts = boto3.resource("dynamodb", region_name="us-east-1").Table("AccountsTable").scan()["Items"]
    filler = [a for a in accounts if a["email"].endswith("@example.net")]

    assert len(filler) == 20
    assert any(expired(a) for a in filler)
    assert not all(expired(a) for a in filler)


def test_seeding_twice_writes_nothing_new(aws: Any) -> None:
    # Given
    first = seed_demo_data(now=NOW)
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("DiagnosticsTable")
    count = table.scan(Select="COUNT")["Count"]

    # When seeded again later the same day
    second = seed_demo_data(now=NOW.replace(hour=22))

    # Then
    assert sum(first.values()) > 0
    assert second == {}
    assert table.scan(Select="COUNT")["Count"] == count


def test_outbox_saves_each_sent_email_once(aws: Any, tmp_path: Path) -> None:
    # Given an email sent through SES
    from lethe.data.mail import send_email

    printed: list[str] = []
    outbox = Outbox(tmp_path / "outbox", echo=printed.append)
    outbox.flush()  # nothing sent yet
    message_id = send_email("outbox-test-7c1@example.org", "Your code 482913", "Enter 482913 to verify.")

    # When
    written = outbox.flush()
    again = outbox.flush()

    # Then one .eml named after the message, printed once
    assert len(written) == 1
    assert written[0].name.endswith(f"-{message_id}.eml")
    assert again == []
    saved = message_from_bytes(written[0].read_bytes(), policy=policy.default)
    assert saved["Subject"] == "Your code 482913"
    assert saved["To"] == "outbox-test-7c1@example.org"
    assert len(printed) == 1
    assert "Subject: Your code 482913" in printed[0]
    assert "Enter 482913 to verify." in printed[0]

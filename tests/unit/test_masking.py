"""Field masking strategies: each one turns a personal value into something that no longer names
the subject, and only the dataset's listed fields are touched."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lethe.data.masking import REDACTED, UNLINKABLE, RequestKey, anonymize, coarsen_date, truncate_ip
from lethe.inventory import parse_inventory

RING = RequestKey(b"x" * 32)
NOW = datetime(2026, 11, 21, tzinfo=UTC)

DATASET = parse_inventory(
    """
version: 1
datasets:
  people:
    table: PeopleTable
    description: test
    controller: self
    subject: {attribute: email, index: by_email}
    key: {hash: person_id}
    fields:
      email:   {category: user.contact.email, erase: pseudonymize}
      name:    {category: user.name, erase: redact}
      secret:  {category: user.authorization.credentials, erase: remove}
      token:   {category: user.device.cookie_id, erase: random}
      ip:      {category: user.device.ip_address, erase: truncate_ip}
      born:    {category: user.demographic.date_of_birth, erase: coarsen_date}
    purposes: [testing]
    on_erasure: anonymize
"""
).dataset("people")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("not an ip", REDACTED),
    ],
)
def test_truncate_ip_keeps_only_the_network(value: str, expected: str) -> None:
    assert truncate_ip(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-17", "2024-03-01"),
        ("2024-03-17T10:11:12+00:00", "2024-03-01T00:00:00+00:00"),
        ("2024-03-17T10:11:12Z", "2024-03-01T00:00:00+00:00"),
        (Decimal(1710670272), Decimal(1709251200)),
        ("garbage", REDACTED),
    ],
)
def test_coarsen_date_goes_to_the_first_of_the_month(value: object, expected: object) -> None:
    assert coarsen_date(value) == expected


def test_coarsen_date_to_the_year() -> None:
    assert coarsen_date("2024-03-17", "year") == "2024-01-01"


def test_anonymize_applies_each_fields_strategy_and_leaves_the_rest() -> None:
    # Given an item with every field plus an unlisted attribute
    item = {
        "person_id": "p-1",
        "email": "ada@example.com",
        "name": "Ada",
        "secret": "hash",
        "token": "cookie-1",
        "ip": "10.1.2.3",
        "born": "1990-07-04",
        "plan": "pro",
    }
    # When it is anonymized
    to_set, to_remove = anonymize(DATASET, item, RING, NOW)
    # Then each field follows its strategy, and nothing else is touched
    assert to_set["email"] == RING.pseudonym("ada@example.com") != "ada@example.com"
    assert to_set["name"] == REDACTED
    assert to_set["token"].startswith("rand:") and to_set["token"] != "cookie-1"
    assert to_set["ip"] == "10.1.2.0"
    assert to_set["born"] == "1990-07-01"
    assert to_remove == ["secret"]
    assert "plan" not in to_set and "person_id" not in to_set


def test_anonymize_skips_fields_the_item_lacks() -> None:
    # Given an item without the optional fields
    item = {"person_id": "p-2", "email": "bob@example.com"}
    # When it is anonymized
    to_set, to_remove = anonymize(DATASET, item, RING, NOW)
    # Then only the present field is masked
    assert set(to_set) == {"email"} and to_remove == []


def test_pseudonym_is_stable_and_keyed() -> None:
    other = RequestKey(b"y" * 32)
    item = {"person_id": "p-3", "email": "cy@example.com"}
    first, _ = anonymize(DATASET, item, RING, NOW)
    again, _ = anonymize(DATASET, item, RING, NOW)
    elsewhere, _ = anonymize(DATASET, item, other, NOW)
    assert first["email"] == again["email"] != elsewhere["email"]


def test_unlinkable_pseudonyms_differ_even_for_the_same_value() -> None:
    # Given the same item masked twice by the retention sweep's pseudonymizer
    item = {"person_id": "p-4", "email": "dee@example.com"}
    first, _ = anonymize(DATASET, item, UNLINKABLE, NOW)
    second, _ = anonymize(DATASET, item, UNLINKABLE, NOW)
    # Then nothing ties either token to the value, or the two to each other
    assert first["email"].startswith("anon:") and second["email"].startswith("anon:")
    assert first["email"] != second["email"]


def test_a_request_key_is_at_least_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        RequestKey(b"short")

"""The hand-written inventory of tests/fixtures/custom_inventory.yaml and its own tables.

Import `custom_inventory` into a test module to use it as a fixture: it points LETHE_INVENTORY at
the file, forgets the cached settings and inventory, and creates the three tables in the moto account.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

INVENTORY = Path(__file__).resolve().parents[1] / "fixtures" / "custom_inventory.yaml"
DEMO_INVENTORY = Path(__file__).resolve().parents[2] / "config" / "inventory.yaml"
TABLES = ("custom-support-tickets", "custom-product-events", "custom-contracts")


def create_tables() -> None:
    from lethe.aws import client

    ddb = client("dynamodb")
    ddb.create_table(
        TableName="custom-support-tickets",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "org_id", "AttributeType": "S"},
            {"AttributeName": "ticket_id", "AttributeType": "S"},
            {"AttributeName": "requester", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "org_id", "KeyType": "HASH"}, {"AttributeName": "ticket_id", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_requester",
                "KeySchema": [{"AttributeName": "requester", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.create_table(
        TableName="custom-product-events",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "actor_email", "AttributeType": "S"},
            {"AttributeName": "event_id", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "actor_email", "KeyType": "HASH"},
            {"AttributeName": "event_id", "KeyType": "RANGE"},
        ],
    )
    ddb.create_table(
        TableName="custom-contracts",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "contract_id", "AttributeType": "S"},
            {"AttributeName": "signer", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "contract_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_signer",
                "KeySchema": [{"AttributeName": "signer", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def demo_inventory_data() -> dict[str, Any]:
    """The demo data map as plain data, for a test to change one thing in it."""
    return yaml.safe_load(DEMO_INVENTORY.read_text())  # type: ignore[no-any-return]


def use_inventory_data(data: dict[str, Any], folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write `data` as an inventory file under `folder` and point LETHE_INVENTORY at it."""
    from lethe.inventory import cached_inventory
    from lethe.settings import get_settings

    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("LETHE_INVENTORY", str(path))
    get_settings.cache_clear()
    cached_inventory.cache_clear()
    return path


def use_custom_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.data.datasets import forget_described_keys
    from lethe.inventory import cached_inventory
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_INVENTORY", str(INVENTORY))
    get_settings.cache_clear()
    cached_inventory.cache_clear()
    forget_described_keys()


@pytest.fixture
def custom_inventory(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from lethe.data.datasets import forget_described_keys
    from lethe.inventory import cached_inventory
    from lethe.settings import get_settings

    use_custom_inventory(monkeypatch)
    create_tables()
    yield INVENTORY
    monkeypatch.delenv("LETHE_INVENTORY")
    get_settings.cache_clear()
    cached_inventory.cache_clear()
    forget_described_keys()

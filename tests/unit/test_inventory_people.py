"""The data map's recipients and manual datasets: checked at load, naming the dataset and field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lethe.errors import InventoryError
from lethe.inventory import EmailNotice, WebhookNotice, load_inventory, parse_inventory

DEMO = Path(__file__).resolve().parents[2] / "config" / "inventory.yaml"
BASE = yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def changed(change: Callable[[dict[str, Any]], object]) -> str:
    data = copy.deepcopy(BASE)
    change(data)
    return yaml.safe_dump(data, allow_unicode=True)


def webhook(data: dict[str, Any]) -> dict[str, Any]:
    return data["datasets"]["accounts"]["recipients"][2]["notify"]  # type: ignore[no-any-return]


def test_the_demo_map_has_a_webhook_recipient_an_email_recipient_and_a_manual_dataset() -> None:
    inventory = load_inventory(DEMO)
    (cafex,) = inventory.dataset("accounts").notified_recipients
    assert isinstance(cafex.notify, WebhookNotice) and cafex.notify.secret == "RecipientWebhookSecret"
    (partner,) = inventory.dataset("feedback").notified_recipients
    assert isinstance(partner.notify, EmailNotice) and partner.notify.email == "privacy@debugging-partner.example"
    # Plain names stay names, shown in exports
    assert inventory.dataset("accounts").recipient_names[0] == "Amazon Web Services (hosting)"
    recordings = inventory.dataset("azure_recordings")
    assert (recordings.store, recordings.owner, recordings.table) == ("manual", "storage-team@example.com", "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: webhook(d).update(webhook="http://hooks.example.com/lethe"),
            "datasets.accounts.recipients.2.notify.webhook: must be an https:// URL (http:// only for 127.0.0.1 "
            "or localhost)",
        ),
        (lambda d: webhook(d).pop("secret"), "datasets.accounts.recipients.2.notify.secret: required field is missing"),
        (
            lambda d: webhook(d).update(secret="the key itself, pasted"),
            "datasets.accounts.recipients.2.notify.secret: String should match pattern",
        ),
        (
            lambda d: webhook(d).update(email="ops@cafex.example"),
            "datasets.accounts.recipients.2: notify: give either email or webhook (with secret), not both",
        ),
        (
            lambda d: d["datasets"]["feedback"]["recipients"][1]["notify"].update(email="not an address"),
            "datasets.feedback.recipients.1.notify.email: String should match pattern",
        ),
        (
            lambda d: d["datasets"]["azure_recordings"].pop("owner"),
            "datasets.azure_recordings.owner: required for store: manual",
        ),
        (
            lambda d: d["datasets"]["azure_recordings"].pop("instructions"),
            "datasets.azure_recordings.instructions: required for store: manual",
        ),
        (
            lambda d: d["datasets"]["azure_recordings"].update(table="RecordingsTable"),
            "datasets.azure_recordings.table: not allowed for store: manual (Lethe cannot reach it)",
        ),
        (lambda d: d["datasets"]["accounts"].pop("table"), "datasets.accounts.table: required field is missing"),
        (
            lambda d: d["datasets"]["accounts"].update(store="ftp"),
            "datasets.accounts.store: Input should be 'dynamodb', 's3' or 'manual'",
        ),
    ],
)
def test_a_bad_recipient_or_manual_dataset_fails_at_load_naming_dataset_and_field(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    with pytest.raises(InventoryError) as raised:
        parse_inventory(changed(change))
    assert str(raised.value).startswith(message)


def test_a_webhook_to_this_machine_may_use_http() -> None:
    inventory = parse_inventory(changed(lambda d: webhook(d).update(webhook="http://localhost:8080/hook")))
    notify = inventory.dataset("accounts").notified_recipients[0].notify
    assert isinstance(notify, WebhookNotice) and notify.webhook == "http://localhost:8080/hook"

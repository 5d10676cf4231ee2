"""The inventory loader: the default data map loads, and each kind of bad file fails at load with
a message naming the dataset and field at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lethe.errors import InventoryError
from lethe.inventory import Action, EraseStrategy, load_inventory, parse_inventory

REPO = Path(__file__).resolve().parents[2]

GOOD = {
    "version": 1,
    "datasets": {
        "accounts": {
            "table": "AccountsTable",
            "description": "Account holders",
            "controller": "self",
            "subject": {"attribute": "email", "index": "by_email"},
            "fields": {
                "email": {"category": "user.contact.email", "erase": "pseudonymize"},
                "ip": {"category": "user.device.ip_address", "erase": "truncate_ip"},
            },
            "purposes": ["account_management"],
            "recipients": ["Amazon Web Services (hosting)"],
            "retention": {"since": "last_active_at", "after": "P2Y", "action": "anonymize", "index": "by_expiry"},
            "on_erasure": "anonymize",
        }
    },
}


def _with(path: str, value: object) -> str:
    """GOOD with one value replaced (or removed when value is ...), as YAML text."""
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return yaml.safe_dump(data)


def test_the_default_inventory_describes_the_policies_datasets() -> None:
    # Given the repository's data map
    inventory = load_inventory(REPO / "config" / "inventory.yaml")
    # Then it holds every dataset the two policies describe
    assert set(inventory.datasets) == {
        "accounts",
        "guest_sessions",
        "diagnostics",
        "feedback",
        "feedback_logs",
        "marketing_contacts",
        "invoices",
        "meetings",
        "azure_recordings",
    }
    # And the recordings in Azure storage are a manual dataset, reached through a recorded meeting
    assert inventory.datasets["azure_recordings"].store == "manual"
    assert inventory.datasets["azure_recordings"].subject.identity == "recordings_account"
    # And meetings are found only through the account id that accounts link to
    assert inventory.datasets["meetings"].subject.identity == "account_id"
    assert inventory.datasets["accounts"].links == {"account_id": "account_id"}
    # And every dataset has purposes, recipients and a retention rule
    for name, dataset in inventory.datasets.items():
        assert dataset.purposes and dataset.recipients, name
        # (a manual dataset is kept by its owner: Lethe cannot sweep it)
        assert (dataset.retention is None) is dataset.is_manual, name
    # And guests are processed for a customer, invoices are isolated on erasure (statutory)
    assert inventory.datasets["guest_sessions"].controller == "customer"
    assert inventory.datasets["invoices"].on_erasure is Action.isolate
    assert inventory.datasets["feedback"].fields["console_log"].erase is EraseStrategy.remove
    # And the Send-Feedback console logs kept as JSON Lines in S3 are a dataset of their own
    logs = inventory.datasets["feedback_logs"]
    assert (logs.store, logs.bucket, logs.prefix, logs.format) == ("s3", "FeedbackLogBucket", "console-logs/", "jsonl")


def test_a_minimal_file_in_the_contract_shape_loads() -> None:
    inventory = parse_inventory(yaml.safe_dump(GOOD))
    accounts = inventory.datasets["accounts"]
    assert accounts.name == "accounts"
    assert accounts.retention is not None and accounts.retention.after.years == 2
    assert accounts.key is None  # read from DescribeTable when first needed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("version: 1\ndatasets: [oops", "not valid YAML at line", id="not-yaml"),
        pytest.param("- just\n- a list\n", "must be a mapping", id="not-a-mapping"),
        pytest.param(_with("version", 2), "version", id="unsupported-version"),
        pytest.param(
            _with("datasets.accounts.table", ...),
            "datasets.accounts.table: required field is missing",
            id="missing-table",
        ),
        pytest.param(
            _with("datasets.accounts.controller", "partner"), "datasets.accounts.controller", id="bad-controller"
        ),
        pytest.param(
            _with("datasets.accounts.fields.ip.erase", "shred"),
            "datasets.accounts.fields.ip.erase",
            id="unknown-erase-strategy",
        ),
        pytest.param(
            _with("datasets.accounts.retention.after", "2 years"),
            "datasets.accounts.retention.after: '2 years' is not an ISO 8601 duration",
            id="bad-duration",
        ),
        pytest.param(
            _with("datasets.accounts.retention.action", "forget"),
            "datasets.accounts.retention.action",
            id="bad-retention-action",
        ),
        pytest.param(
            _with("datasets.accounts.on_erasure", "burn"), "datasets.accounts.on_erasure", id="bad-on-erasure"
        ),
        pytest.param(
            _with("datasets.accounts.retain_for", "P1Y"),
            "datasets.accounts.retain_for: unknown field",
            id="unknown-field",
        ),
        pytest.param(_with("datasets.accounts.purposes", []), "datasets.accounts.purposes", id="no-purposes"),
        pytest.param(
            _with("datasets.accounts.fields.ip.category", "IP Address"),
            "datasets.accounts.fields.ip.category",
            id="bad-category",
        ),
        pytest.param(
            _with("datasets.accounts.subject", {"attribute": "email"}).replace(
                "on_erasure: anonymize", "on_erasure: anonymize\n    key: {hash: account_id}"
            ),
            "datasets.accounts: subject.index: required unless",
            id="scan-to-find-subject",
        ),
        pytest.param(
            _with("datasets.accounts.key", {"hash": "email"}),
            "key attributes cannot be anonymized in place",
            id="anonymize-a-key",
        ),
        pytest.param("version: 1\ndatasets:\n  a: {}\n  a: {}\n", "duplicate key 'a'", id="duplicate-dataset"),
        pytest.param(
            _with("datasets", {"Bad-Name": GOOD["datasets"]["accounts"]}), "datasets.Bad-Name", id="bad-dataset-name"
        ),
        pytest.param(
            _with("datasets.accounts.retention.shards", 0), "datasets.accounts.retention.shards", id="zero-shards"
        ),
    ],
)
def test_a_bad_file_fails_at_load_naming_dataset_and_field(text: str, expected: str) -> None:
    # When a broken data map is loaded
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, source="inventory.yaml")
    # Then the one-line message says where the fault is
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory file"):
        load_inventory(tmp_path / "nope.yaml")


def test_identifying_attributes_are_never_correctable_in_any_dataset() -> None:
    # Given two datasets: one marks its lookup address and customer rectifiable, the other is found by `name`
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    accounts = data["datasets"]["accounts"]
    accounts["controller"], accounts["customer"] = "customer", "customer_id"
    accounts["key"] = {"hash": "account_id"}
    accounts["fields"] = {
        "email": {"category": "user.contact.email", "erase": "pseudonymize", "rectifiable": True},
        "customer_id": {"category": "system.customer", "erase": "redact", "rectifiable": True},
        "company": {"category": "user.workplace", "erase": "redact", "rectifiable": True},
        "name": {"category": "user.name", "erase": "redact", "rectifiable": True},
    }
    data["datasets"]["speakers"] = {
        **{k: v for k, v in accounts.items() if k not in ("customer", "key")},
        "controller": "self",
        "subject": {"attribute": "name", "index": "by_name"},
    }
    inventory = parse_inventory(yaml.safe_dump(data))

    # Then what says whose a record is (subject attributes, keys, the customer) is identifying
    assert inventory.datasets["accounts"].identifying_attributes() == {"email", "account_id", "customer_id"}
    assert inventory.identifying_attributes() == {"email", "account_id", "customer_id", "name"}
    # And only the rest of the rectifiable fields can be corrected, anywhere
    assert inventory.correctable_fields() == {"company": {"user.workplace"}}
    assert inventory.correctable_fields("accounts") == {"company": {"user.workplace"}}


# ------------------------------------------------------------------ identities and links

MEETINGS = {
    "table": "MeetingsTable",
    "description": "Hosted meetings",
    "controller": "self",
    "subject": {"identity": "account_id", "attribute": "host_account_id", "index": "by_host"},
    "key": {"hash": "meeting_id"},
    "fields": {"host_account_id": {"category": "user.unique_id", "erase": "remove"}},
    "purposes": ["service_provision"],
    "on_erasure": "delete",
}


def _linked(**changes: object) -> dict[str, object]:
    """GOOD plus a meetings dataset found through the account id that accounts link to."""
    data: dict[str, object] = yaml.safe_load(yaml.safe_dump(GOOD))
    data["identities"] = {"account_id": {}}
    datasets = data["datasets"]
    assert isinstance(datasets, dict)
    datasets["accounts"]["key"] = {"hash": "account_id"}
    datasets["accounts"]["links"] = {"account_id": "account_id"}
    datasets["meetings"] = yaml.safe_load(yaml.safe_dump(MEETINGS))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node: dict[str, object] = data
        for part in parents:
            node = node[part]  # type: ignore[assignment]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return data


def _refusal(data: dict[str, object]) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(yaml.safe_dump(data))
    return caught.value


def test_a_dataset_found_through_a_linked_identity_loads() -> None:
    # Given accounts linking to the account id, and meetings found by it
    inventory = parse_inventory(yaml.safe_dump(_linked()))
    # Then the identities resolve, and the link attribute is one rectification must leave alone
    assert inventory.datasets["meetings"].subject.identity == "account_id"
    assert inventory.datasets["accounts"].subject.identity == "email"
    assert inventory.datasets["accounts"].link_attributes == frozenset({"account_id"})


def test_a_link_cycle_loads() -> None:
    # Given meetings linking back to an email (the host's), which accounts are found by
    data = _linked()
    meetings = data["datasets"]["meetings"]  # type: ignore[index]
    meetings["fields"]["host_email"] = {"category": "user.contact.email", "erase": "remove"}
    meetings["links"] = {"email": "host_email"}
    # Then the file loads: a value is followed once, so the rounds end
    inventory = parse_inventory(yaml.safe_dump(data))
    assert inventory.datasets["meetings"].links == {"email": "host_email"}


def test_an_unknown_subject_identity_is_refused_naming_dataset_and_field() -> None:
    error = _refusal(_linked(datasets__meetings__subject={**MEETINGS["subject"], "identity": "customer_no"}))  # type: ignore[dict-item]
    assert (error.dataset, error.field) == ("meetings", "subject.identity")
    assert "unknown identity 'customer_no'" in str(error)
    assert str(error).startswith("datasets.meetings.subject.identity:")


def test_an_identity_nothing_can_supply_is_refused() -> None:
    # Given meetings found by the account id, but no dataset links to it
    error = _refusal(_linked(datasets__accounts__links=...))
    # Then the loader names meetings' subject.identity
    assert (error.dataset, error.field) == ("meetings", "subject.identity")
    assert "nothing can supply identity 'account_id'" in str(error)


def test_a_declared_identity_nothing_supplies_is_refused() -> None:
    data = _linked()
    data["identities"] = {"account_id": {}, "phone": {"format": "e164"}}
    error = _refusal(data)
    assert error.dataset is None and error.field == "identities.phone"


def test_a_link_to_an_unknown_identity_is_refused() -> None:
    error = _refusal(_linked(datasets__accounts__links={"account_id": "account_id", "loyalty_no": "email"}))
    assert (error.dataset, error.field) == ("accounts", "links.loyalty_no")


def test_a_link_attribute_that_is_neither_field_nor_key_is_refused() -> None:
    error = _refusal(_linked(datasets__accounts__links={"account_id": "acct"}))
    assert (error.dataset, error.field) == ("accounts", "links.account_id")
    assert "'acct' is not declared as a field or the key" in str(error)


def test_an_unindexed_lookup_by_a_linked_identity_is_refused() -> None:
    # Given meetings found by host_account_id with no index, and a key on another attribute
    subject = {"identity": "account_id", "attribute": "host_account_id"}
    error = _refusal(_linked(datasets__meetings__subject=subject))
    assert error.dataset == "meetings" and str(error).startswith("datasets.meetings: subject.index: required")
    # And with no key declared at all, nothing proves the lookup is a Query: refused too
    error = _refusal(_linked(datasets__meetings__subject=subject, datasets__meetings__key=...))
    assert (error.dataset, error.field) == ("meetings", "subject.index")
    assert "needs an index on host_account_id" in str(error)


def test_a_linked_identity_may_be_the_tables_hash_key() -> None:
    subject = {"identity": "account_id", "attribute": "host_account_id"}
    inventory = parse_inventory(
        yaml.safe_dump(
            _linked(datasets__meetings__subject=subject, datasets__meetings__key={"hash": "host_account_id"})
        )
    )
    assert inventory.datasets["meetings"].subject_is_key


def test_an_identity_format_is_checked() -> None:
    data = _linked()
    data["identities"] = {"account_id": {}, "phone": {"format": "e164"}}
    data["datasets"]["accounts"]["fields"]["phone"] = {"category": "user.contact.phone_number", "erase": "remove"}  # type: ignore[index]
    data["datasets"]["accounts"]["links"]["phone"] = "phone"  # type: ignore[index]
    inventory = parse_inventory(yaml.safe_dump(data))
    phone = inventory.identity("phone")
    assert phone.accepts("+442071234567")
    assert not phone.accepts("020 7123 4567") and not phone.accepts("+0123")
    # And an unknown format is refused at load
    data["identities"] = {"account_id": {}, "phone": {"format": "phone-ish"}}
    error = _refusal(data)
    assert error.field == "identities.phone.format"

"""Settings are read from LETHE_* variables once per cold start, and refuse unsafe values."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from lethe.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_settings_read_lethe_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given
    monkeypatch.setenv("LETHE_REQUESTS_TABLE", "lethe-prod-requests-7f3a")
    monkeypatch.setenv("LETHE_EXPORT_BUCKET", "lethe-prod-exports-7f3a")
    monkeypatch.setenv("LETHE_ADMIN_TOKEN", "token-settings-test-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")

    # When
    settings = get_settings()

    # Then
    assert settings.requests_table == "lethe-prod-requests-7f3a"
    assert settings.export_bucket == "lethe-prod-exports-7f3a"
    assert settings.admin_token == "token-settings-test-1"
    assert settings.region == "eu-west-2"


def test_settings_are_read_once_per_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_VAULT_TABLE", "vault-first")
    first = get_settings()

    monkeypatch.setenv("LETHE_VAULT_TABLE", "vault-second")

    assert get_settings() is first
    assert get_settings().vault_table == "vault-first"


def test_dataset_tables_json_maps_logical_ids_to_physical_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the map the template passes to every function
    mapping = {"AccountsTable": "lethe-stack-AccountsTable-1AB2", "InvoicesTable": "billing-invoices"}
    monkeypatch.setenv("LETHE_DATASET_TABLES", json.dumps(mapping))

    # When
    settings = get_settings()

    # Then logical ids resolve, and a name that is already physical passes through
    assert settings.dataset_tables == mapping
    assert settings.table_name("AccountsTable") == "lethe-stack-AccountsTable-1AB2"
    assert settings.table_name("InvoicesTable") == "billing-invoices"
    assert settings.table_name("crm-contacts-prod") == "crm-contacts-prod"


def test_empty_dataset_tables_means_no_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_DATASET_TABLES", "")

    assert get_settings().dataset_tables == {}
    assert get_settings().table_name("FeedbackTable") == "FeedbackTable"


def test_export_link_ttl_cannot_exceed_seven_days() -> None:
    with pytest.raises(ValidationError, match="export_link_ttl_seconds"):
        Settings(export_link_ttl_seconds=7 * 24 * 3600 + 1)


def test_export_link_ttl_from_environment_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_EXPORT_LINK_TTL_SECONDS", str(8 * 24 * 3600))

    with pytest.raises(ValidationError):
        get_settings()


def test_export_link_ttl_of_seven_days_is_allowed() -> None:
    assert Settings(export_link_ttl_seconds=7 * 24 * 3600).export_link_ttl_seconds == 604800


def test_ended_requests_keep_contact_details_90_days_by_default() -> None:
    assert Settings().request_contact_retention_days == 90


def test_contact_retention_period_comes_from_the_environment_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_REQUEST_CONTACT_RETENTION_DAYS", "30")
    assert get_settings().request_contact_retention_days == 30
    with pytest.raises(ValidationError, match="request_contact_retention_days"):
        Settings(request_contact_retention_days=-1)


def test_a_variable_lethe_does_not_know_is_ignored_and_a_bad_map_names_its_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a variable with the prefix that names no setting, and a map that is not JSON
    monkeypatch.setenv("LETHE_NOT_A_SETTING", "x")
    monkeypatch.setenv("LETHE_DATASET_BUCKETS", "{not json")

    # Then the bad map is refused by name, and the unknown variable is not what is refused
    with pytest.raises(ValidationError, match="dataset_buckets") as refused:
        get_settings()
    assert "not_a_setting" not in str(refused.value)

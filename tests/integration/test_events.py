"""Every sample event in events/ runs through its function's real handler, as `sam local invoke -e`
and the local stack would run it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import EVENTS

FUNCTION_FOR_EVENT = {
    "public_api.json": "PublicApiFunction",
    "admin_api.json": "AdminApiFunction",
    "deadline.json": "DeadlineFunction",
    "retention.json": "RetentionFunction",
    "retention_future.json": "RetentionFunction",
    "vault_purge.json": "VaultPurgeFunction",
    "fulfilment_worker.json": "FulfilmentWorkerFunction",
    "failed_task.json": "FailedTaskFunction",
    "retention_worker.json": "RetentionWorkerFunction",
    "notification.json": "NotificationFunction",
    "retention_index.json": "RetentionIndexFunction",
    "restore_replay.json": "RestoreReplayFunction",
}
SAMPLE_ADMIN_TOKEN = "local-admin-token"  # the token written into events/admin_api.json


def test_every_event_file_has_a_function() -> None:
    # Given the files in events/
    files = {path.name for path in EVENTS.glob("*.json")}

    # Then each one is mapped to the function it is a sample for
    assert files == set(FUNCTION_FOR_EVENT)


def test_every_template_function_has_a_sample_event() -> None:
    from lethe_local.template import functions, load_template

    assert set(functions(load_template())) == set(FUNCTION_FOR_EVENT.values())


@pytest.mark.parametrize("event_file", sorted(FUNCTION_FOR_EVENT))
def test_sample_event_runs_through_its_handler(
    event_file: str,
    invoke: Callable[[str, dict[str, Any]], Any],
    sample_event: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the sample event and the token it carries (for the admin API)
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_ADMIN_TOKEN", SAMPLE_ADMIN_TOKEN)
    get_settings.cache_clear()
    event = sample_event(event_file)

    # When
    result = invoke(FUNCTION_FOR_EVENT[event_file], event)

    # Then
    if "Records" in event:
        assert isinstance(result, dict)
        assert isinstance(result["batchItemFailures"], list)
    elif "httpMethod" in event:
        assert isinstance(result, dict)
        assert 200 <= result["statusCode"] < 500, result.get("body")

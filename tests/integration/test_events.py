"""Every sample event in events/ runs through its function's real handler, as `sam local invoke -e`
and the local stack would run it."""

from __future__ import annotations

import json
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
    "inbound_email.json": "InboundEmailFunction",
    "object_index.json": "ObjectIndexFunction",
    "opendsr_api.json": "OpenDsrApiFunction",
    "opendsr_callback.json": "OpenDsrCallbackFunction",
    "recipient_notice.json": "RecipientNoticeFunction",
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


def _http(status: int, **body: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def check(result: dict[str, Any], event: dict[str, Any]) -> None:
        assert result["statusCode"] == status, result.get("body")
        answer = json.loads(result["body"])
        for key, value in body.items():
            assert answer[key] == value, key

    return check


def _batch(failures: list[dict[str, str]]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def check(result: dict[str, Any], event: dict[str, Any]) -> None:
        assert result == {"batchItemFailures": failures}

    return check


def _scheduled(**fields: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def check(result: dict[str, Any], event: dict[str, Any]) -> None:
        assert result["now"] == event["time"]
        for key, value in fields.items():
            assert result[key] == value, key

    return check


# What each sample does against empty tables: the exact outcome, so a change of behaviour shows.
EXPECTED: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "public_api.json": _http(200, supported_regulations=["gdpr", "uk-gdpr", "ccpa", "dpf", "default"]),
    "admin_api.json": _http(200, requests=[], next_cursor=None),
    "deadline.json": _scheduled(overdue=[], due_soon=[], expired_unverified=0, digest_sent=False, failed=[]),
    "retention.json": lambda result, event: _sweep_planned(result, event),
    "retention_future.json": lambda result, event: _sweep_planned(result, event),
    "vault_purge.json": _scheduled(purged=0, kept_under_hold=0),
    # A task or dead letter for a request that does not exist is dropped, not retried forever.
    "fulfilment_worker.json": _batch([]),
    "failed_task.json": _batch([]),
    "retention_worker.json": _batch([]),
    "notification.json": _batch([]),
    "retention_index.json": _batch([]),
    # The sample's restored table was never made here: a restore that failed after it was called.
    "restore_replay.json": lambda result, event: _equal(result, {"job": None}),
    # The sample's message was never stored in the inbound bucket (or has expired from it).
    "inbound_email.json": lambda result, event: _equal(
        result, {"outcomes": [{"outcome": "ignored", "reason": "message no longer stored"}]}
    ),
    # The sample's object was never written here: it is gone, so nobody is indexed.
    "object_index.json": lambda result, event: _equal(result, {"objects": 1, "entries": 0}),
    "opendsr_api.json": _http(200, supported_subject_request_types=["access", "portability", "erasure"]),
    # The sample's callback URL is a closed port on this machine: the delivery fails and is retried.
    "opendsr_callback.json": _batch([{"itemIdentifier": "0d5c3a52-9f0e-4c4b-a7a1-5b1c9e6f2d10"}]),
    # A notice of a request that does not exist is dropped, not retried forever.
    "recipient_notice.json": _batch([]),
}


def _sweep_planned(result: dict[str, Any], event: dict[str, Any]) -> None:
    """A sweep queues one task per shard or scan segment (4 each here) of every table dataset with a
    retention rule, and one per S3 dataset (it reads the prefix's objects once)."""
    from lethe.inventory import get_inventory

    assert result["now"] == event["time"]
    datasets = get_inventory().datasets.items()
    expected = {name: 1 if d.in_s3 else 4 for name, d in datasets if d.retention is not None}
    assert result["tasks_per_dataset"] == expected
    assert result["tasks"] == sum(expected.values())


def _equal(result: dict[str, Any], expected: dict[str, Any]) -> None:
    assert result == expected


def test_every_event_has_an_expected_outcome() -> None:
    assert set(EXPECTED) == set(FUNCTION_FOR_EVENT)


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

    # Then it does exactly what the sample is for
    EXPECTED[event_file](result, event)

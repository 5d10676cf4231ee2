"""Which AWS errors are worth retrying in place, and that the retry gives up on the others."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from pynamodb.exceptions import PutError

from lethe.aws import error_code, is_transient, retry_transient
from lethe.errors import DatasetUnavailable


def client_error(code: str, status: int = 400, reasons: list[str] | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "Op")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("InternalServerError", 500),
        client_error("SomethingNew", 503),
        client_error("TransactionCanceledException", reasons=["None", "ThrottlingError"]),
        ReadTimeoutError(endpoint_url="https://dynamodb"),
        EndpointConnectionError(endpoint_url="https://dynamodb"),
        PutError("Failed to put item", ReadTimeoutError(endpoint_url="https://dynamodb")),
        PutError("Failed to put item", client_error("ThrottlingException")),
    ],
)
def test_transient_errors_are_recognised_through_their_wrappers(exc: Exception) -> None:
    assert is_transient(exc)
    wrapped = DatasetUnavailable("dataset x: table cannot be reached")
    wrapped.__cause__ = exc
    assert is_transient(wrapped)


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ConditionalCheckFailedException"),
        client_error("ResourceNotFoundException"),
        client_error("ValidationException"),
        client_error("TransactionCanceledException", reasons=["ConditionalCheckFailed", "None"]),
        client_error("TransactionCanceledException", reasons=["ThrottlingError", "ConditionalCheckFailed"]),
        PutError("Failed to put item", client_error("ConditionalCheckFailedException")),
        ValueError("a bug"),
    ],
)
def test_refusals_and_bugs_are_not_transient(exc: Exception) -> None:
    assert not is_transient(exc)


def test_error_code_reads_through_pynamodb_even_for_a_timeout() -> None:
    # pynamodb's own cause_response_code raises AttributeError when the cause is a read timeout
    refused = PutError("x", client_error("ConditionalCheckFailedException"))
    assert error_code(refused) == "ConditionalCheckFailedException"
    assert error_code(PutError("x", ReadTimeoutError(endpoint_url="https://d"))) == "PutError"


def test_retry_transient_retries_until_success_and_gives_up_on_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_TRANSIENT_RETRY_BASE_MS", "0")
    get_settings.cache_clear()
    outcomes: list[Exception | str] = [client_error("ThrottlingException"), ReadTimeoutError(endpoint_url="u"), "done"]
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry_transient(flaky, what="test") == "done"
    assert len(calls) == 3

    refused = client_error("ConditionalCheckFailedException")

    def refuses() -> None:
        calls.append(1)
        raise refused

    calls.clear()
    with pytest.raises(ClientError):
        retry_transient(refuses, what="test")
    assert len(calls) == 1

    def always_throttled() -> None:
        calls.append(1)
        raise client_error("ThrottlingException")

    calls.clear()
    with pytest.raises(ClientError):
        retry_transient(always_throttled, what="test")
    assert len(calls) == get_settings().transient_retries + 1
    get_settings.cache_clear()

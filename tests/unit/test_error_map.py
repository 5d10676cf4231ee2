"""The error map: what the caller can fix is a 4xx, what is Lethe's own fault a 5xx, never blamed on the caller."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from lethe import errors
from lethe.api.errors import STATUS_FOR, register_error_handlers
from lethe_local.events import api_event


def _answer(raised: Exception) -> dict[str, Any]:
    app = APIGatewayRestResolver()
    register_error_handlers(app)

    @app.get("/boom")
    def boom() -> dict[str, str]:
        raise raised

    return app.resolve(api_event("GET", "/boom"), None)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "raised",
    [
        errors.ConfigurationError("LETHE_X is not set"),
        errors.InventoryError("bad", dataset="accounts", field="table"),
        errors.RunIncomplete("jobs failed: a"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_server_side_error_is_a_500_that_says_nothing_of_lethes_insides(raised: Exception) -> None:
    answer = _answer(raised)

    assert answer["statusCode"] == 500
    body = json.loads(answer["body"])
    assert body == {"error": {"code": "internal_error", "message": "Lethe could not complete this; try again later"}}


def test_an_unreachable_dataset_is_a_503() -> None:
    answer = _answer(errors.DatasetUnavailable("accounts is unreachable"))

    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"]["code"] == errors.DatasetUnavailable.code


def test_every_client_error_is_mapped_to_a_4xx_and_only_server_faults_are_left_unmapped() -> None:
    unmapped = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.LetheError) and cls not in STATUS_FOR
    }
    assert unmapped == {"LetheError", "ConfigurationError", "InventoryError", "RetentionTaskFailed", "RunIncomplete"}
    assert all(400 <= status < 500 for cls, status in STATUS_FOR.items() if cls is not errors.DatasetUnavailable)

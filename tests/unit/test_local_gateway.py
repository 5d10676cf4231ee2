"""The local gateway under a stage prefix turns requests into the events API Gateway sends (in process,
through werkzeug's test client: no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from werkzeug.test import Client

from lethe_local.server import LocalGateway, Runtime
from lethe_local.template import FunctionSpec, Route


class RecordingRuntime(Runtime):
    """Answers every invocation with 200 and keeps the event it was given."""

    def __init__(self) -> None:
        spec = FunctionSpec(
            "PublicApiFunction",
            Path("functions/public_api"),
            "app.lambda_handler",
            routes=[Route("GET", "/", False), Route("POST", "/requests", False), Route("GET", "/requests/{id}", False)],
        )
        super().__init__({spec.logical_id: spec})
        self.events: list[dict[str, Any]] = []

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def gateway(stage: str | None) -> tuple[Client, RecordingRuntime]:
    runtime = RecordingRuntime()
    return Client(LocalGateway(runtime, log=None, stage=stage)), runtime


def test_a_request_under_the_stage_is_an_event_without_it() -> None:
    client, runtime = gateway("prod")
    # When a request comes to /prod/requests/req_1
    response = client.get("/prod/requests/req_1")
    # Then the function gets the resource path without the stage, and the stage in requestContext
    assert response.status_code == 200
    (event,) = runtime.events
    assert event["path"] == "/requests/req_1"
    assert event["resource"] == "/requests/{id}"
    assert event["pathParameters"] == {"id": "req_1"}
    assert event["requestContext"]["stage"] == "prod"
    assert event["requestContext"]["path"] == "/prod/requests/req_1"


def test_the_stage_root_with_or_without_a_slash_is_the_root_route() -> None:
    client, runtime = gateway("prod")
    assert client.get("/prod").status_code == 200
    assert client.get("/prod/").status_code == 200
    assert [e["path"] for e in runtime.events] == ["/", "/"]


def test_a_path_outside_the_stage_is_a_json_404_and_reaches_no_function() -> None:
    client, runtime = gateway("prod")
    for path in ("/requests/req_1", "/production/requests/req_1", "/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"
    assert runtime.events == []


def test_without_a_stage_the_request_path_carries_no_prefix() -> None:
    client, runtime = gateway(None)
    assert client.post("/requests", json={}).status_code == 200
    (event,) = runtime.events
    assert event["path"] == "/requests"
    assert event["requestContext"]["path"] == "/requests"

"""The `lethe` CLI against a deployed stack: the API URL comes from the stack's ApiUrl output
(CloudFormation, here moto's) and every call is SigV4-signed for execute-api, as API Gateway's IAM
authorizer requires. A stand-in API on a local port records what arrives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
from typer.testing import CliRunner

from lethe_cli.main import app

runner = CliRunner()


class _Recorder(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        self.calls.append({"method": "GET", "path": self.path, "headers": dict(self.headers.items())})
        body = json.dumps(
            {
                "requests": [
                    {
                        "request_id": "req_deployed",
                        "type": "erasure",
                        "status": "pending",
                        "due_at": "2026-12-22T00:00:00Z",
                    }
                ],
                "next_cursor": None,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def deployed_api() -> Iterator[str]:
    _Recorder.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/Prod/"
    server.shutdown()


@pytest.fixture
def cloudformation() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("cloudformation", region_name="us-east-1")


def _stack(cloudformation: Any, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_stack_option_finds_the_api_and_signs_every_call(cloudformation: Any, deployed_api: str) -> None:
    # Given a deployed stack whose ApiUrl output points at the API
    _stack(cloudformation, "lethe-prod", {"ApiUrl": deployed_api})

    # When an operator lists requests against it
    result = runner.invoke(
        app,
        ["--stack", "lethe-prod", "--region", "us-east-1", "requests", "list", "--status", "pending", "--json"],
        catch_exceptions=False,
    )

    # Then the call went to that API, signed with SigV4 for execute-api in the stack's region, and no bearer token
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requests"][0]["request_id"] == "req_deployed"
    (call,) = _Recorder.calls
    assert call["path"] == "/Prod/admin/requests?status=pending"
    authorization = call["headers"]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/execute-api/aws4_request" in authorization
    assert "SignedHeaders=" in authorization and "Signature=" in authorization
    assert "X-Amz-Date" in call["headers"]


def test_a_stack_without_an_api_url_is_one_clear_line(cloudformation: Any) -> None:
    _stack(cloudformation, "not-lethe", {"Other": "x"})
    result = runner.invoke(app, ["--stack", "not-lethe", "--region", "us-east-1", "requests", "list"])
    assert result.exit_code != 0
    assert "has no ApiUrl output" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_stack_is_one_clear_line(cloudformation: Any) -> None:
    result = runner.invoke(app, ["--stack", "missing", "--region", "us-east-1", "audit", "verify"])
    assert result.exit_code != 0
    assert "cannot read stack 'missing'" in result.output
    assert "Traceback" not in result.output

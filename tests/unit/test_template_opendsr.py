"""The template's OpenDSR part: controllers' routes are IAM-gated while discovery, the certificate and the
OpenAPI document are public; the processor key is an asymmetric signing key only the two OpenDSR
functions may use, and only to sign; callbacks go through a queue with a dead-letter queue and alarms."""

from __future__ import annotations

from typing import Any

import pytest

from lethe_local.template import load_template
from tests.unit.test_template_security import api_routes


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return dict(load_template()["Resources"])


def test_controller_routes_need_iam_and_the_rest_is_public(resources: dict[str, dict[str, Any]]) -> None:
    routes = {
        (m, p): (fn, auth.get("Authorizer")) for fn, m, p, auth in api_routes(resources) if p.startswith("/opendsr/")
    }
    gated = {route for route, (_, authorizer) in routes.items() if authorizer == "AWS_IAM"}
    assert {fn for fn, _ in routes.values()} == {"OpenDsrApiFunction"}
    assert gated == {
        (method, f"/opendsr/v2/{name}{suffix}")
        for name in ("requests", "opengdpr_requests")
        for method, suffix in (("POST", ""), ("GET", "/{subject_request_id}"), ("DELETE", "/{subject_request_id}"))
    }
    assert set(routes) - gated == {
        ("GET", "/opendsr/v2/discovery"),
        ("GET", "/opendsr/v2/certificate.pem"),
        ("GET", "/opendsr/v2/openapi.json"),
    }


def _statements(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in props.get("Policies", []) if isinstance(policy, dict) for s in policy.get("Statement", [])]


def test_the_processor_key_signs_and_nothing_else(resources: dict[str, dict[str, Any]]) -> None:
    key = resources["ProcessorSigningKey"]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("RSA_2048", "SIGN_VERIFY")
    users = {}
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for statement in _statements(resource["Properties"]):
            if "ProcessorSigningKey" in str(statement.get("Resource")):
                users[name] = statement["Action"]
    assert users == {"OpenDsrApiFunction": ["kms:Sign"], "OpenDsrCallbackFunction": ["kms:Sign"]}


def test_callbacks_have_a_dead_letter_queue_and_alarms(resources: dict[str, dict[str, Any]]) -> None:
    queue = resources["OpenDsrCallbackQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["OpenDsrCallbackDLQ", "Arn"]}
    alarmed = {
        str(alarm["Properties"]["Dimensions"][0]["Value"])
        for alarm in resources.values()
        if alarm.get("Type") == "AWS::CloudWatch::Alarm" and alarm["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert any("OpenDsrCallbackDLQ" in value for value in alarmed)
    assert any("OpenDsrCallbackQueue" in value for value in alarmed)

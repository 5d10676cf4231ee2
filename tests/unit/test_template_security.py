"""template.yaml keeps its promises: IAM on the admin API, none on the public one, a locked-down bucket,
encrypted queues, an alarm for every function and dead-letter queue, a dashboard, and a clean cfn-lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lethe_local.template import TEMPLATE, load_template


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return load_template()["Resources"]  # type: ignore[no-any-return]


def of_type(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r.get("Type") == kind}


def api_routes(resources: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    routes = []
    for name, function in of_type(resources, "AWS::Serverless::Function").items():
        for event in (function["Properties"].get("Events") or {}).values():
            if event.get("Type") == "Api":
                props = event["Properties"]
                routes.append((name, props["Method"].upper(), props["Path"], props.get("Auth") or {}))
    return routes


def refs(node: Any) -> set[str]:
    """Every logical id a Ref or GetAtt inside node points at."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches: its single metric, or each MetricStat of a metric-math alarm."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"], **props}]
    return [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]


def test_admin_routes_all_require_iam(resources: dict[str, dict[str, Any]]) -> None:
    admin = [r for r in api_routes(resources) if r[2].startswith("/admin")]
    assert len(admin) >= 12, "the admin API of DESIGN.md has at least a dozen routes"
    unprotected = [(m, p) for _, m, p, auth in admin if auth.get("Authorizer") != "AWS_IAM"]
    assert unprotected == []
    assert {fn for fn, *_ in admin} == {"AdminApiFunction"}


def test_public_routes_have_no_authorizer(resources: dict[str, dict[str, Any]]) -> None:
    # Admin routes and OpenDSR controllers' routes are IAM-gated (tests/unit/test_template_opendsr.py).
    public = [r for r in api_routes(resources) if not r[2].startswith(("/admin", "/opendsr/"))]
    assert ("GET", "/") in {(m, p) for _, m, p, _ in public}
    gated = [(m, p) for _, m, p, auth in public if auth.get("Authorizer") not in (None, "NONE")]
    assert gated == []
    assert {fn for fn, *_ in public} <= {"PublicApiFunction"}
    # And no default authorizer on the API could silently gate them
    for api in of_type(resources, "AWS::Serverless::Api").values():
        assert "DefaultAuthorizer" not in (api["Properties"].get("Auth") or {})


def test_buckets_are_tls_only_private_and_kms_encrypted(resources: dict[str, dict[str, Any]]) -> None:
    buckets = of_type(resources, "AWS::S3::Bucket")
    policies = of_type(resources, "AWS::S3::BucketPolicy")
    assert buckets
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        block = props["PublicAccessBlockConfiguration"]
        assert all(
            block[k] is True
            for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        )
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert all(r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" for r in rules)
        assert all(r["ServerSideEncryptionByDefault"].get("KMSMasterKeyID") for r in rules)
        denies = [
            statement
            for policy in policies.values()
            if name in refs(policy["Properties"]["Bucket"])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Deny"
            and statement["Condition"].get("Bool", {}).get("aws:SecureTransport") in ("false", False)
        ]
        assert denies, f"{name} has no deny-insecure-transport policy"
        resources_denied = denies[0]["Resource"]
        assert len(resources_denied) == 2, "the deny covers the bucket and its objects"


def test_every_queue_is_encrypted(resources: dict[str, dict[str, Any]]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    assert len(queues) >= 6
    unencrypted = [n for n, q in queues.items() if not (q["Properties"].get("KmsMasterKeyId"))]
    assert unencrypted == []


def test_every_function_has_an_errors_alarm(resources: dict[str, dict[str, Any]]) -> None:
    functions = set(of_type(resources, "AWS::Serverless::Function"))
    watched = {
        ref
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        for metric in alarm_metrics(alarm)
        if metric["Namespace"] == "AWS/Lambda" and metric["MetricName"] == "Errors"
        for ref in refs(metric.get("Dimensions"))
    }
    assert functions - watched == set()


def test_every_dead_letter_queue_has_an_alarm(resources: dict[str, dict[str, Any]]) -> None:
    dlqs = {
        target
        for queue in of_type(resources, "AWS::SQS::Queue").values()
        for target in refs((queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
    }
    assert dlqs >= {"WorkDLQ", "RetentionDLQ", "NotificationDLQ"}
    watched = {
        ref
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        for metric in alarm_metrics(alarm)
        if metric["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["Threshold"] == 0
        and alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
        for ref in refs(metric.get("Dimensions"))
    }
    assert dlqs - watched == set()


def test_overdue_and_sweep_failure_alarms_exist(resources: dict[str, dict[str, Any]]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    overdue = [a for a in alarms.values() if a["Properties"].get("MetricName") == "OverdueRequests"]
    assert len(overdue) == 1
    assert overdue[0]["Properties"]["Namespace"] == "Lethe"
    assert overdue[0]["Properties"]["Threshold"] == 0
    assert overdue[0]["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
    sweep = alarms["SweepFailuresAlarm"]
    assert refs(sweep["Properties"]["Metrics"]) >= {
        "RetentionFunction",
        "RetentionWorkerFunction",
        "VaultPurgeFunction",
    }


def test_every_alarm_notifies_the_operator_topic(resources: dict[str, dict[str, Any]]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 14
    silent = [n for n, a in alarms.items() if "OperatorTopic" not in refs(a["Properties"].get("AlarmActions"))]
    assert silent == []


def test_dashboard_shows_requests_deadlines_sweeps_dlqs_and_functions(resources: dict[str, dict[str, Any]]) -> None:
    dashboards = of_type(resources, "AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body_node = next(iter(dashboards.values()))["Properties"]["DashboardBody"]
    template_text = body_node["Fn::Sub"] if isinstance(body_node, dict) else body_node
    substituted = set(re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", template_text))
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", template_text))
    assert body["widgets"]
    text = json.dumps(body)
    for metric in ("RequestsByStatus", "OverdueRequests", "ItemsDeleted", "ItemsAnonymized", "ItemsIsolated"):
        assert metric in text
    assert '"Errors"' in text and '"Duration"' in text
    assert set(of_type(resources, "AWS::Serverless::Function")) <= substituted
    assert {"WorkDLQ", "RetentionDLQ", "NotificationDLQ"} <= substituted


def test_cfn_lint_reports_no_errors() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=300, check=False)
    # cfn-lint's exit code is a bit mask: 2 means errors (4 warnings, 8 informational).
    assert result.returncode & 2 == 0 and result.returncode & 1 == 0, result.stdout + result.stderr

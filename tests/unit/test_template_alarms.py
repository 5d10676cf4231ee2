"""template.yaml has the alarms an operator needs (DESIGN.md, "Deployed as it is shipped"): every
function's throttles, every work queue's oldest message, every Lethe table's throttled requests, the
API's 5XX rate and latency, SES reputation, and a dashboard that shows every dead-letter queue.

The rules iterate over the template's functions, queues and tables, so later additions are checked.
LETHE_TEMPLATE points the checks at another template."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from lethe_local.template import TEMPLATE, load_template
from tests.unit.test_template_security import alarm_metrics, of_type, refs


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return load_template(Path(os.environ.get("LETHE_TEMPLATE") or TEMPLATE))["Resources"]  # type: ignore[no-any-return]


def watched(resources: dict[str, dict[str, Any]], namespace: str, *metric_names: str) -> dict[str, set[str]]:
    """Metric name -> the logical ids its alarms' dimensions refer to."""
    found: dict[str, set[str]] = {name: set() for name in metric_names}
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        for metric in alarm_metrics(alarm):
            if metric["Namespace"] == namespace and metric["MetricName"] in found:
                found[metric["MetricName"]] |= refs(metric.get("Dimensions"))
    return found


def dead_letter_queues(resources: dict[str, dict[str, Any]]) -> set[str]:
    queues = of_type(resources, "AWS::SQS::Queue")
    redriven = {t for q in queues.values() for t in refs(q["Properties"].get("RedrivePolicy") or {})}
    targets = {
        t
        for fn in of_type(resources, "AWS::Serverless::Function").values()
        for t in refs((fn["Properties"].get("DeadLetterQueue") or {}).get("TargetArn"))
    }
    return (redriven | targets) & set(queues)


def test_every_function_has_a_throttles_alarm(resources: dict[str, dict[str, Any]]) -> None:
    functions = set(of_type(resources, "AWS::Serverless::Function"))
    assert functions - watched(resources, "AWS/Lambda", "Throttles")["Throttles"] == set()


def test_every_work_queue_has_an_oldest_message_alarm(resources: dict[str, dict[str, Any]]) -> None:
    # A queue a function consumes that is not itself a dead-letter queue (those alarm on depth)
    consumed = {
        ref
        for fn in of_type(resources, "AWS::Serverless::Function").values()
        for event in (fn["Properties"].get("Events") or {}).values()
        if event.get("Type") == "SQS"
        for ref in refs(event["Properties"]["Queue"])
    }
    work_queues = consumed - dead_letter_queues(resources)
    assert work_queues >= {"WorkQueue", "RetentionQueue", "NotificationQueue"}
    age = watched(resources, "AWS/SQS", "ApproximateAgeOfOldestMessage")["ApproximateAgeOfOldestMessage"]
    assert work_queues - age == set()


def test_every_lethe_table_has_a_throttle_alarm(resources: dict[str, dict[str, Any]]) -> None:
    # Lethe's own tables; the demo service tables come and go with CreateDemoTables
    tables = {n for n, t in of_type(resources, "AWS::DynamoDB::Table").items() if "Condition" not in t}
    found = watched(resources, "AWS/DynamoDB", "ReadThrottleEvents", "WriteThrottleEvents", "ThrottledRequests")
    assert tables - found["ReadThrottleEvents"] - found["ThrottledRequests"] == set()
    assert tables - found["WriteThrottleEvents"] - found["ThrottledRequests"] == set()


def test_the_api_alarms_on_5xx_and_latency(resources: dict[str, dict[str, Any]]) -> None:
    alarms = [a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    api = [a for a in alarms if a.get("Namespace") == "AWS/ApiGateway"]
    assert {a["MetricName"] for a in api} >= {"5XXError", "Latency"}
    # Named by the API's own Name and stage, or the alarm watches nothing
    names = [a for a in of_type(resources, "AWS::Serverless::Api").values()]
    assert len(names) == 1
    api_name = names[0]["Properties"]["Name"]
    for alarm in api:
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions["ApiName"] == api_name
        assert dimensions["Stage"] == {"Ref": "Stage"}


def test_ses_bounce_and_complaint_rates_alarm_before_ses_acts(resources: dict[str, dict[str, Any]]) -> None:
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/SES"
    }
    # SES reviews an account at a 5% bounce rate and a 0.1% complaint rate
    assert 0 < alarms["Reputation.BounceRate"]["Threshold"] < 0.05
    assert 0 < alarms["Reputation.ComplaintRate"]["Threshold"] < 0.001


def test_the_dashboard_shows_every_dead_letter_queue(resources: dict[str, dict[str, Any]]) -> None:
    body = next(iter(of_type(resources, "AWS::CloudWatch::Dashboard").values()))["Properties"]["DashboardBody"]
    text = body["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{([A-Za-z0-9]+)\.QueueName\}", r"\1", re.sub(r"\$\{AWS::[A-Za-z]+\}", "x", text)))
    dlq_widget = next(w for w in widgets["widgets"] if "Dead-letter" in w["properties"].get("title", ""))
    shown = {row[3] for row in dlq_widget["properties"]["metrics"]}
    assert dead_letter_queues(resources) - shown == set()

"""The call counter and fault injector see calls made by boto3 clients and by pynamodb alike."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws_calls import counting_calls, injecting_faults


@pytest.mark.usefixtures("aws")
def test_counts_boto3_and_pynamodb_calls(aws: Any) -> None:
    from lethe.aws import client
    from lethe.data.models import SuppressionRecord

    with counting_calls() as counter:
        client("dynamodb").describe_table(TableName="AuditTable")
        assert SuppressionRecord.count("k1:nobody") == 0
    assert counter.calls["dynamodb.DescribeTable"] == 1
    assert counter.calls["dynamodb.Query"] == 1


def test_injected_faults_are_seeded_and_look_like_aws_errors(aws: Any) -> None:
    from lethe.aws import client

    outcomes = []
    for _ in range(2):
        with injecting_faults(0.5, seed=7) as injector:
            seen = []
            for _ in range(20):
                try:
                    client("dynamodb").describe_table(TableName="AuditTable")
                    seen.append("ok")
                except ClientError as exc:
                    seen.append(exc.response["Error"]["Code"])
                except Exception as exc:
                    seen.append(type(exc).__name__)
            outcomes.append(seen)
            assert sum(injector.injected.values()) == sum(1 for s in seen if s != "ok")
    assert outcomes[0] == outcomes[1]
    assert "ok" in outcomes[0] and len(set(outcomes[0])) > 1

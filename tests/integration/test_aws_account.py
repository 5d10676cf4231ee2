"""The `aws` fixture hands each test a copy of one account built from template.yaml
(tests/support/moto_account.py): a copy describes exactly as the account it was taken from, and
what one test writes is absent from the next test's copy."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from lethe_local.resources import create_stack
from tests.support.moto_account import restore, stack_snapshot, take


def describe() -> dict[str, Any]:
    """Everything the account holds, as the AWS APIs report it."""
    ddb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")
    kms, secrets = boto3.client("kms"), boto3.client("secretsmanager")
    sns, ses = boto3.client("sns"), boto3.client("ses")
    out: dict[str, Any] = {"tables": {}, "queues": {}, "buckets": {}}
    for name in ddb.list_tables()["TableNames"]:
        out["tables"][name] = {
            "table": ddb.describe_table(TableName=name)["Table"],
            "ttl": ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"],
            "backups": ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"],
            "items": ddb.scan(TableName=name)["Items"],
        }
    for url in sqs.list_queues().get("QueueUrls", []):
        out["queues"][url] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        versions = s3.list_object_versions(Bucket=name)
        out["buckets"][name] = {
            "created": bucket["CreationDate"],
            "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
            "encryption": s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"],
            "public_access": s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"],
            "versions": versions.get("Versions", []) + versions.get("DeleteMarkers", []),
        }
    out["keys"] = [kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"] for key in kms.list_keys()["Keys"]]
    out["secrets"] = {
        entry["Name"]: secrets.get_secret_value(SecretId=entry["ARN"])["SecretString"]
        for entry in secrets.list_secrets()["SecretList"]
    }
    out["topics"] = sns.list_topics()["Topics"]
    out["identities"] = ses.list_identities()["Identities"]
    return out


def write_everywhere() -> None:
    """One item in every table, a message in every queue, an object in every bucket, and a new
    key, secret, topic and SES identity."""
    ddb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")
    for name in ddb.list_tables()["TableNames"]:
        table = ddb.describe_table(TableName=name)["Table"]
        kinds = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        item = {k["AttributeName"]: {kinds[k["AttributeName"]]: "1"} for k in table["KeySchema"]}
        ddb.put_item(TableName=name, Item=item)
    for url in sqs.list_queues()["QueueUrls"]:
        sqs.send_message(QueueUrl=url, MessageBody="{}")
    for bucket in s3.list_buckets()["Buckets"]:
        s3.put_object(Bucket=bucket["Name"], Key="written", Body=b"x")
    boto3.client("kms").create_key(Description="written")
    boto3.client("secretsmanager").create_secret(Name="written", SecretString="x")
    boto3.client("sns").create_topic(Name="written")
    boto3.client("ses").verify_email_identity(EmailAddress="written@example.org")


def test_a_copy_describes_exactly_as_the_account_it_was_taken_from() -> None:
    with mock_aws():
        stack = create_stack()
        original = describe()
        snapshot = take(stack)
    with mock_aws():
        assert describe()["tables"] == {}  # the mock starts empty: what follows is the copy's alone
        copied = restore(snapshot)
        assert describe() == original
    assert copied == stack
    assert len(original["tables"]) == len(stack.tables) > 0
    assert len(original["queues"]) == len(stack.queue_urls) > 0


def test_what_one_copy_is_given_is_absent_from_the_next() -> None:
    snapshot = stack_snapshot()
    with mock_aws():
        restore(snapshot)
        fresh = describe()
        write_everywhere()
        written = describe()
    assert all(len(table["items"]) == 1 for table in written["tables"].values())
    assert all(queue["ApproximateNumberOfMessages"] == "1" for queue in written["queues"].values())
    assert all(len(bucket["versions"]) == 1 for bucket in written["buckets"].values())
    assert len(written["keys"]) == len(fresh["keys"]) + 1
    assert set(written["secrets"]) == {*fresh["secrets"], "written"}
    assert len(written["topics"]) == len(fresh["topics"]) + 1
    assert set(written["identities"]) == {*fresh["identities"], "written@example.org"}
    with mock_aws():
        restore(snapshot)
        assert describe() == fresh

"""The local stack's faster TransactWriteItems keeps moto's all-or-nothing outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def ddb() -> Iterator[Any]:
    from moto import mock_aws

    from lethe_local import moto_speed

    moto_speed.install()
    try:
        with mock_aws():
            yield from _tables()
    finally:
        moto_speed.uninstall()  # the rest of the suite runs on stock moto


def _tables() -> Iterator[Any]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    for name, keys in (("Plain", ["pk"]), ("Ranged", ["pk", "sk"])):
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
        )
    client.put_item(TableName="Plain", Item={"pk": {"S": "a"}, "v": {"S": "1"}})
    client.put_item(TableName="Ranged", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"S": "1"}})
    yield client


def _items(client: Any, table: str) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName=table)["Items"], key=str)


def test_a_cancelled_transaction_changes_nothing(ddb: Any) -> None:
    before = {t: _items(ddb, t) for t in ("Plain", "Ranged")}
    # When a transaction updates one item, puts a new one, deletes a third, and its last condition fails
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "Plain",
                        "Key": {"pk": {"S": "a"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "2"}},
                    }
                },
                {"Put": {"TableName": "Ranged", "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
                {"Delete": {"TableName": "Ranged", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
                {
                    "Put": {
                        "TableName": "Plain",
                        "Item": {"pk": {"S": "b"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    # Then every table is as it was
    assert {t: _items(ddb, t) for t in ("Plain", "Ranged")} == before


def test_a_transaction_that_succeeds_applies_every_part(ddb: Any) -> None:
    ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": "Plain",
                    "Item": {"pk": {"S": "b"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Delete": {"TableName": "Ranged", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
        ]
    )
    assert [i["pk"]["S"] for i in _items(ddb, "Plain")] == ["a", "b"]
    assert _items(ddb, "Ranged") == []


def test_a_backup_taken_after_a_transaction_is_a_copy_not_the_live_table(ddb: Any) -> None:
    ddb.update_continuous_backups(
        TableName="Plain", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "Plain", "Item": {"pk": {"S": "b"}}}}])
    arn = ddb.create_backup(TableName="Plain", BackupName="before-c")["BackupDetails"]["BackupArn"]
    ddb.put_item(TableName="Plain", Item={"pk": {"S": "c"}})
    ddb.restore_table_from_backup(TargetTableName="Restored", BackupArn=arn)
    assert [i["pk"]["S"] for i in _items(ddb, "Restored")] == ["a", "b"]


def test_uninstalled_moto_is_stock() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    from lethe_local import moto_speed

    stock = DynamoDBBackend.transact_write_items
    moto_speed.install()
    assert DynamoDBBackend.transact_write_items is not stock
    moto_speed.uninstall()
    assert DynamoDBBackend.transact_write_items is stock
    assert "__deepcopy__" not in vars(Table)

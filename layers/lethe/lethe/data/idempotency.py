"""The idempotency table, as Powertools' persistence layer: where a function remembers a call it
answered, so a retry of the same call gets the first answer instead of a second effect."""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from lethe.aws import client
from lethe.settings import get_settings


def persistence_layer() -> DynamoDBPersistenceLayer:
    """A layer on the configured table, through Lethe's shared DynamoDB client (one per process)."""
    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table, boto3_client=client("dynamodb"))

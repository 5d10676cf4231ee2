"""template.yaml is the one source of truth: the pynamodb models must agree with it."""

from __future__ import annotations

from typing import Any

import pytest

from lethe.data.models import ALL_MODELS
from lethe_local.template import load_template

TEMPLATE = load_template()


def _table(logical_id: str) -> dict[str, Any]:
    return TEMPLATE["Resources"][logical_id]["Properties"]  # type: ignore[no-any-return]


def _keys(schema: list[dict[str, str]]) -> tuple[str | None, str | None]:
    hash_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "HASH"), None)
    range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
    return hash_key, range_key


CASES = [(logical_id, model) for logical_id, models in ALL_MODELS.items() for model in models]


@pytest.mark.parametrize(("logical_id", "model"), CASES, ids=[f"{t}-{m.__name__}" for t, m in CASES])
def test_model_keys_match_template(logical_id: str, model: Any) -> None:
    # Given the table in template.yaml and its pynamodb model
    props = _table(logical_id)
    # Then the primary key is the same
    assert _keys(props["KeySchema"]) == (model._hash_keyname, model._range_keyname)
    # And every index the model declares exists in the template with the same keys
    template_indexes = {gsi["IndexName"]: gsi for gsi in props.get("GlobalSecondaryIndexes", [])}
    for index in model._indexes.values():
        name = index.Meta.index_name
        assert name in template_indexes, f"{model.__name__} declares {name}, missing from {logical_id}"
        schema = template_indexes[name]["KeySchema"]
        index_keys = {a.attr_name: a for a in index.Meta.attributes.values() if a.is_hash_key or a.is_range_key}
        declared = (
            next((n for n, a in index_keys.items() if a.is_hash_key), None),
            next((n for n, a in index_keys.items() if a.is_range_key), None),
        )
        assert _keys(schema) == declared
        assert template_indexes[name]["Projection"]["ProjectionType"] == index.Meta.projection.projection_type
    # And key attribute types agree
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    for name, attr in model.get_attributes().items():
        if attr.attr_name in types:
            assert types[attr.attr_name] == attr.attr_type, f"{logical_id}.{name}"


def test_every_lethe_table_has_a_model_or_is_the_idempotency_table() -> None:
    lethe_tables = {
        lid for lid, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table" and "Condition" not in r
    }
    assert lethe_tables - set(ALL_MODELS) == {"IdempotencyTable"}


@pytest.mark.parametrize(
    "logical_id", [lid for lid, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"]
)
def test_every_table_is_encrypted_with_a_customer_key_and_has_pitr(logical_id: str) -> None:
    props = _table(logical_id)
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    sse = props["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS" and "KMSMasterKeyId" in sse

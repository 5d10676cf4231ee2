"""template.yaml keeps Lethe's promises about its own data: exports expire with their link, only the
exporter and the vault purger may read the vault, and the retention run may scrub ended requests."""

from __future__ import annotations

from typing import Any

import pytest

from lethe.settings import Settings
from lethe_local.template import load_template

VAULT_READS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return load_template()["Resources"]  # type: ignore[no-any-return]


def _mentions(node: Any, logical_id: str) -> bool:
    if isinstance(node, dict):
        if node.get("Ref") == logical_id or node.get("TableName") == {"Ref": logical_id}:
            return True
        target = node.get("Fn::GetAtt") or node.get("Fn::Sub")
        if target is not None and logical_id in str(target):
            return True
        return any(_mentions(v, logical_id) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, logical_id) for v in node)
    return False


def _reads_vault(policy: Any) -> bool:
    if not isinstance(policy, dict):
        return False
    for template in ("DynamoDBCrudPolicy", "DynamoDBReadPolicy"):
        if template in policy and _mentions(policy[template], "VaultTable"):
            return True
    statements = policy.get("Statement", [])
    for statement in statements:
        actions = statement.get("Action", [])
        actions = {actions} if isinstance(actions, str) else set(actions)
        if actions & VAULT_READS and _mentions(statement.get("Resource"), "VaultTable"):
            return True
    return False


def test_export_objects_expire_with_their_link(resources: dict[str, dict[str, Any]]) -> None:
    # Given the export bucket's lifecycle rule for exports
    rules = resources["ExportBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r.get("Prefix") == "exports/"]
    # Then objects go when the longest link allowed has expired, and old versions a day after
    longest_link = Settings.model_fields["export_link_ttl_seconds"].metadata
    limit = next(m.le for m in longest_link if getattr(m, "le", None) is not None)
    assert rule["ExpirationInDays"] * 86400 == limit
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_only_the_exporter_and_the_vault_purger_read_the_vault(resources: dict[str, dict[str, Any]]) -> None:
    readers = {
        name
        for name, r in resources.items()
        if r.get("Type") == "AWS::Serverless::Function"
        and any(_reads_vault(p) for p in r["Properties"].get("Policies", []))
    }
    assert readers == {"FulfilmentWorkerFunction", "VaultPurgeFunction"}


def test_the_retention_run_may_scrub_lethes_own_requests(resources: dict[str, dict[str, Any]]) -> None:
    # Given the retention run's statements
    statements = [
        s
        for p in resources["RetentionFunction"]["Properties"]["Policies"]
        if isinstance(p, dict)
        for s in p.get("Statement", [])
    ]
    # Then one lets it find ended requests by the scrub index and drop their contact details, and no more
    (scrub,) = [s for s in statements if _mentions(s.get("Resource"), "RequestsTable")]
    assert set(scrub["Action"]) == {"dynamodb:Query", "dynamodb:UpdateItem"}
    assert {"Fn::GetAtt": ["RequestsTable", "Arn"]} in scrub["Resource"]
    assert any("index/by_pii_scrub" in str(r) for r in scrub["Resource"])

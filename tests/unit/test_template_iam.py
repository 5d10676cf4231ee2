"""template.yaml deploys as it is shipped (DESIGN.md): the audit is append-only by IAM, every function
has only explicit permissions, may use the key of every encrypted queue it sends to, has a log group
with a retention period, answers API calls within API Gateway's 29 s, and links to the public base URL.

Every rule iterates over every function of the template, so a function added later is checked too.
LETHE_TEMPLATE points the checks at another template (e.g. an older one, to see them fail)."""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from lethe_local.template import TEMPLATE, load_template
from tests.unit.test_template_security import of_type, refs

API_GATEWAY_LIMIT_SECONDS = 29
SQS_SOURCE_MIN_CONCURRENCY = 5
# Anything that changes or removes an existing item, or the table itself.
AUDIT_MUTATIONS = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
)
# SAM policy templates that grant writes on the table they name.
WRITING_POLICY_TEMPLATES = ("DynamoDBCrudPolicy", "DynamoDBWritePolicy")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(Path(os.environ.get("LETHE_TEMPLATE") or TEMPLATE))


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template["Resources"]  # type: ignore[no-any-return]


def functions(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = of_type(resources, "AWS::Serverless::Function")
    assert found, "template.yaml has no functions"
    return {name: fn["Properties"] for name, fn in found.items()}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(resources: dict[str, dict[str, Any]], props: dict[str, Any]) -> list[dict[str, Any]]:
    """Every IAM statement a function's Policies give it: inline ones and those of the managed policies
    of the template it refers to."""
    found: list[dict[str, Any]] = []
    for policy in as_list(props.get("Policies") or []):
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(as_list(policy["Statement"]))
        elif isinstance(policy, dict) and set(policy) == {"Ref"}:
            managed = resources.get(policy["Ref"], {})
            if managed.get("Type") == "AWS::IAM::ManagedPolicy":
                found.extend(as_list(managed["Properties"]["PolicyDocument"]["Statement"]))
    return found


def policy_templates(props: dict[str, Any]) -> list[tuple[str, Any]]:
    """SAM policy templates (e.g. DynamoDBCrudPolicy) with their arguments, and AWS managed policies by
    name (arguments None), in the order the function lists them."""
    found: list[tuple[str, Any]] = []
    for policy in as_list(props.get("Policies") or []):
        if isinstance(policy, str):
            found.append((policy, None))
        elif isinstance(policy, dict) and "Statement" not in policy and set(policy) != {"Ref"}:
            found.extend(policy.items())
    return found


def allows(statement: dict[str, Any], action: str) -> bool:
    return statement.get("Effect") == "Allow" and any(
        fnmatchcase(action.lower(), str(pattern).lower()) for pattern in as_list(statement.get("Action", []))
    )


def covers(statement: dict[str, Any], logical_id: str) -> bool:
    """The statement's resources name the resource, or are a wildcard that could."""
    resource = statement.get("Resource")
    wildcard = any(isinstance(r, str) and (r == "*" or r.endswith(":*")) for r in as_list(resource))
    return wildcard or logical_id in refs(resource)


def test_no_function_may_update_or_delete_an_audit_record(resources: dict[str, dict[str, Any]]) -> None:
    # Given every function's permissions
    offenders: dict[str, list[str]] = {}
    for name, props in functions(resources).items():
        # Then no Allow statement names the audit table (or any table) with an action that changes items
        found = [
            action
            for statement in statements(resources, props)
            if covers(statement, "AuditTable")
            for action in AUDIT_MUTATIONS
            if allows(statement, action)
        ]
        # And no SAM template writes to it, nor does an AWS managed policy (which may write anywhere)
        for template_name, args in policy_templates(props):
            if template_name in WRITING_POLICY_TEMPLATES and "AuditTable" in refs(args):
                found.append(template_name)
            elif args is None:
                found.append(f"managed policy {template_name}")
        if found:
            offenders[name] = sorted(set(found))
    assert offenders == {}


def test_the_audit_policy_denies_every_change(resources: dict[str, dict[str, Any]]) -> None:
    # An explicit Deny holds even if a later statement allows too much
    for name, props in functions(resources).items():
        denied = {
            action
            for statement in statements(resources, props)
            if statement.get("Effect") == "Deny" and "AuditTable" in refs(statement.get("Resource"))
            for action in AUDIT_MUTATIONS
            if any(fnmatchcase(action, str(p)) for p in as_list(statement.get("Action", [])))
        }
        assert denied == set(AUDIT_MUTATIONS), f"{name} lacks the audit's Deny of {set(AUDIT_MUTATIONS) - denied}"


def test_no_function_uses_crud_policy_templates(resources: dict[str, dict[str, Any]]) -> None:
    # Each function states the actions it uses; CRUD templates grant Scan, DeleteItem and BatchWriteItem too
    broad = {
        name: sorted({t for t, _ in policy_templates(props) if t.endswith(("CrudPolicy", "FullAccessPolicy"))})
        for name, props in functions(resources).items()
    }
    assert {name: found for name, found in broad.items() if found} == {}


def sent_queues(props: dict[str, Any], statements_: list[dict[str, Any]], queues: set[str]) -> set[str]:
    """The queues a function sends to: SQS send statements, SQSSendMessagePolicy, its DeadLetterQueue."""
    sent = {q for s in statements_ if allows(s, "sqs:SendMessage") for q in refs(s.get("Resource")) & queues}
    sent |= {q for t, args in policy_templates(props) if t == "SQSSendMessagePolicy" for q in refs(args) & queues}
    dead_letter = props.get("DeadLetterQueue") or {}
    if dead_letter.get("Type") == "SQS":
        sent |= refs(dead_letter.get("TargetArn")) & queues
    return sent


def test_every_sender_to_an_encrypted_queue_may_use_its_key(resources: dict[str, dict[str, Any]]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    keys = {name: refs(q["Properties"].get("KmsMasterKeyId")) for name, q in queues.items()}
    missing: dict[str, list[str]] = {}
    checked = 0
    for name, props in functions(resources).items():
        granted = statements(resources, props)
        # Given each encrypted queue the function sends to
        for queue in sent_queues(props, granted, set(queues)):
            for key in keys[queue]:
                checked += 1
                # Then the function may generate data keys with that queue's key
                if not any(allows(s, "kms:GenerateDataKey") and covers(s, key) for s in granted):
                    missing.setdefault(name, []).append(f"{queue} ({key})")
    assert checked >= 5, "the template's functions send to its encrypted queues"
    assert missing == {}


def test_every_function_has_a_log_group_with_retention_and_a_key(resources: dict[str, dict[str, Any]]) -> None:
    groups = of_type(resources, "AWS::Logs::LogGroup")

    def group_of(name: str, props: dict[str, Any]) -> dict[str, Any] | None:
        configured = refs((props.get("LoggingConfig") or {}).get("LogGroup"))
        for logical_id, group in groups.items():
            group_name = group["Properties"].get("LogGroupName")
            sub = group_name.get("Fn::Sub") if isinstance(group_name, dict) else None
            if logical_id in configured or (isinstance(sub, str) and sub == f"/aws/lambda/${{{name}}}"):
                return group["Properties"]  # type: ignore[no-any-return]
        return None

    problems = {}
    for name, props in functions(resources).items():
        group = group_of(name, props)
        if group is None:
            problems[name] = "no log group /aws/lambda/<function>"
        elif not (isinstance(group.get("RetentionInDays"), int) and group.get("KmsKeyId")):
            problems[name] = "log group without RetentionInDays or KmsKeyId"
    assert problems == {}


def test_the_data_key_lets_cloudwatch_logs_use_it(resources: dict[str, dict[str, Any]]) -> None:
    keys = {
        ref for g in of_type(resources, "AWS::Logs::LogGroup").values() for ref in refs(g["Properties"]["KmsKeyId"])
    }
    for key in keys:
        policy = resources[key]["Properties"]["KeyPolicy"]["Statement"]
        logs = [
            s
            for s in policy
            if s["Effect"] == "Allow"
            and "logs." in str(s.get("Principal", {}).get("Service"))
            and allows(s, "kms:GenerateDataKey")
            and allows(s, "kms:Decrypt")
        ]
        assert logs, f"{key} encrypts log groups but its policy does not let CloudWatch Logs use it"


def effective(template: dict[str, Any], props: dict[str, Any], name: str) -> Any:
    return props.get(name, template.get("Globals", {}).get("Function", {}).get(name))


def test_api_functions_answer_within_api_gateway_limit(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    api_functions = {
        name: int(effective(template, props, "Timeout") or 3)
        for name, props in functions(resources).items()
        if any(e.get("Type") == "Api" for e in (props.get("Events") or {}).values())
    }
    assert api_functions, "the template has API functions"
    assert {n: t for n, t in api_functions.items() if t > API_GATEWAY_LIMIT_SECONDS} == {}


def test_sqs_triggered_functions_have_the_concurrency_lambda_needs(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    too_low = {
        name: reserved
        for name, props in functions(resources).items()
        if any(e.get("Type") == "SQS" for e in (props.get("Events") or {}).values())
        and (reserved := effective(template, props, "ReservedConcurrentExecutions")) is not None
        and int(reserved) < SQS_SOURCE_MIN_CONCURRENCY
    }
    assert too_low == {}


def test_every_function_links_to_the_public_base_url(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # Functions that build links take them from PublicBaseUrl; the API's own functions may not refer to
    # the API (it refers to them: a cycle) and take its invoke URL from their first event instead.
    shared = (template.get("Globals", {}).get("Function", {}).get("Environment") or {}).get("Variables") or {}
    assert "LETHE_PUBLIC_BASE_URL" not in shared, "API functions cannot refer to the API"
    for name, props in functions(resources).items():
        variables = (props.get("Environment") or {}).get("Variables") or {}
        assert "PublicBaseUrl" in refs(variables.get("LETHE_PUBLIC_BASE_URL")), name
        apis = {
            ref
            for event in (props.get("Events") or {}).values()
            if event.get("Type") == "Api"
            for ref in refs(event["Properties"].get("RestApiId"))
        }
        assert apis.isdisjoint(refs(props.get("Environment"))), f"{name} refers to the API that invokes it"


def test_layers_build_from_their_own_small_directory(resources: dict[str, dict[str, Any]]) -> None:
    import tomllib

    repo = TEMPLATE.parent
    layers = of_type(resources, "AWS::Serverless::LayerVersion")
    assert layers
    for name, layer in layers.items():
        # Given the layer's source directory: not the repository, so sam build copies no virtual env
        source = (repo / layer["Properties"]["ContentUri"]).resolve()
        assert source != repo.resolve() and repo.resolve() in source.parents, name
        assert not any(source.glob(".venv*")), name
        # And a makefile build has its target there
        if layer.get("Metadata", {}).get("BuildMethod") == "makefile":
            assert f"build-{name}:" in (source / "Makefile").read_text(encoding="utf-8"), name
    # And plain `sam` commands have a region and build in source (the layer reads ../../config)
    config = tomllib.loads((repo / "samconfig.toml").read_text(encoding="utf-8"))["default"]
    assert config["global"]["parameters"]["region"]
    assert config["build"]["parameters"]["build_in_source"] is True

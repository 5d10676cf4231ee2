"""Creates every resource of template.yaml on the current AWS endpoint (moto), from the template's
own Properties, and returns the environment the functions run with."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3

from lethe_local.template import Resolver, TemplateError, load_template

# Properties CreateTable accepts as they are written in CloudFormation.
_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)


@dataclass
class Stack:
    """What was created: physical ids by logical id, and the functions' environment."""

    physical: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    signing_keys: list[str] = field(default_factory=list)


@cache
def _boto_session(region: str) -> boto3.session.Session:
    # Reused by every stack this process creates: a new session loads botocore's data files again.
    return boto3.session.Session(region_name=region)


class _Clients:
    """One client per service for the whole stack: creating a botocore client is the costly part."""

    def __init__(self, region: str) -> None:
        self._session = _boto_session(region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)  # type: ignore[call-overload]
        return self._clients[service]


def create_stack(
    template: dict[str, Any] | None = None, *, region: str = "us-east-1", sender_verified: bool = True
) -> Stack:
    template = template or load_template()
    session = _Clients(region)
    resolver = Resolver(template, region=region)
    stack = Stack()
    resources = template["Resources"]
    order = sorted(resources, key=lambda lid: _rank(resources[lid].get("Type", "")))
    for logical_id in order:
        resource = resources[logical_id]
        if not resolver.included(logical_id):
            continue
        kind = resource.get("Type")
        props = resource.get("Properties", {})
        try:
            _create(session, resolver, stack, logical_id, kind, props)
        except TemplateError:
            raise
        except KeyError as exc:
            raise TemplateError(f"template.yaml: {logical_id} lacks property {exc}") from exc
    if sender_verified:
        session.client("ses").verify_email_identity(EmailAddress=resolver.parameters.get("SenderEmail", ""))
    env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    stack.environment = {name: str(resolver.value(value)) for name, value in env.items()}
    # Locally the repository's config/ and botocore's own data are used, not the layer's /opt/config.
    stack.environment.pop("LETHE_INVENTORY", None)
    stack.environment.pop("LETHE_SERVICE_DATA", None)
    stack.environment["AWS_REGION"] = region
    # OpenDSR: without an operator's certificate, one for the signing key's public key (development only).
    if stack.signing_keys and not stack.environment.get("LETHE_PROCESSOR_CERTIFICATE"):
        from lethe_local.certificate import local_certificate

        stack.environment["LETHE_PROCESSOR_CERTIFICATE"] = local_certificate(
            session.client("kms"), stack.signing_keys[0]
        )
    return stack


def _rank(kind: str) -> int:
    # Keys first (tables, queues and secrets name them), then DLQs before the queues that use them.
    return {"AWS::KMS::Key": 0, "AWS::SecretsManager::Secret": 1, "AWS::SQS::Queue": 2}.get(kind, 5)


def _create_key(session: Any, resolver: Resolver, stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    # An asymmetric key (the OpenDSR signing key) is made with its KeySpec and KeyUsage.
    shape = {name: str(props[name]) for name in ("KeySpec", "KeyUsage") if name in props}
    key = session.client("kms").create_key(Description=str(resolver.value(props.get("Description", ""))), **shape)
    meta = key["KeyMetadata"]
    if props.get("KeyUsage") == "SIGN_VERIFY":
        stack.signing_keys.append(meta["KeyId"])
    resolver.physical[logical_id] = meta["KeyId"]
    resolver.attributes[(logical_id, "Arn")] = meta["Arn"]


def _create(
    session: Any, resolver: Resolver, stack: Stack, logical_id: str, kind: str | None, props: dict[str, Any]
) -> None:
    if kind == "AWS::KMS::Key":
        _create_key(session, resolver, stack, logical_id, props)
    elif kind == "AWS::SecretsManager::Secret":
        generate = props.get("GenerateSecretString") or {}
        value = json.loads(generate.get("SecretStringTemplate", "{}"))
        value[generate.get("GenerateStringKey", "value")] = secrets.token_urlsafe(48)
        created = session.client("secretsmanager").create_secret(Name=logical_id, SecretString=json.dumps(value))
        resolver.physical[logical_id] = created["ARN"]
    elif kind == "AWS::DynamoDB::Table":
        _create_table(session, resolver, logical_id, props)
        stack.tables.append(logical_id)
    elif kind == "AWS::SQS::Queue":
        attributes: dict[str, str] = {}
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
        if "MessageRetentionPeriod" in props:
            attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(resolver.value(props["RedrivePolicy"]))
        sqs = session.client("sqs")
        url = sqs.create_queue(QueueName=logical_id, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolver.physical[logical_id] = url
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "QueueName")] = logical_id
        stack.queue_urls[logical_id] = url
    elif kind == "AWS::S3::Bucket":
        name = f"lethe-{logical_id.lower()}"
        s3 = session.client("s3")
        s3.create_bucket(Bucket=name)
        if "BucketEncryption" in props:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=_sse(resolver, props))
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration=_lifecycle(props))
        _versioning(s3, name, props)
        resolver.physical[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    elif kind == "AWS::SNS::Topic":
        arn = session.client("sns").create_topic(Name=logical_id)["TopicArn"]
        resolver.physical[logical_id] = arn
    elif kind in ("AWS::Serverless::Api", "AWS::Serverless::LayerVersion", "AWS::Serverless::Function"):
        resolver.physical[logical_id] = logical_id
    # Policies, alarms and dashboards have no local effect.
    if logical_id in resolver.physical:
        stack.physical[logical_id] = resolver.physical[logical_id]


def _versioning(s3: Any, name: str, props: dict[str, Any]) -> None:
    """S3 datasets need it (Lethe refuses an unversioned one); the export bucket has it as in AWS."""
    if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def _create_table(session: Any, resolver: Resolver, logical_id: str, props: dict[str, Any]) -> None:
    kwargs = {k: resolver.value(props[k]) for k in _TABLE_KEYS if k in props}
    sse = props.get("SSESpecification")
    if sse:
        resolved = resolver.value(sse)
        kwargs["SSESpecification"] = {
            "Enabled": bool(resolved.get("SSEEnabled")),
            "SSEType": resolved.get("SSEType", "KMS"),
            **({"KMSMasterKeyId": resolved["KMSMasterKeyId"]} if resolved.get("KMSMasterKeyId") else {}),
        }
    if "StreamSpecification" in kwargs:  # CloudFormation's form has no StreamEnabled: naming a view enables it
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **kwargs["StreamSpecification"]}
    ddb = session.client("dynamodb")
    created = ddb.create_table(TableName=logical_id, **kwargs)["TableDescription"]
    if (ttl := props.get("TimeToLiveSpecification")) and ttl.get("Enabled"):
        ddb.update_time_to_live(TableName=logical_id, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification") or {}
    if pitr.get("PointInTimeRecoveryEnabled"):
        ddb.update_continuous_backups(TableName=logical_id, PointInTimeRecoverySpecification=pitr)
    resolver.physical[logical_id] = logical_id
    resolver.attributes[(logical_id, "Arn")] = (
        f"arn:aws:dynamodb:{resolver.region}:{resolver.account}:table/{logical_id}"
    )
    if created.get("LatestStreamArn"):
        resolver.attributes[(logical_id, "StreamArn")] = created["LatestStreamArn"]


def _sse(resolver: Resolver, props: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in resolver.value(props["BucketEncryption"])["ServerSideEncryptionConfiguration"]:
        default = rule["ServerSideEncryptionByDefault"]
        apply = {"SSEAlgorithm": default["SSEAlgorithm"]}
        if default.get("KMSMasterKeyID"):
            apply["KMSMasterKeyID"] = default["KMSMasterKeyID"]
        rules.append(
            {"ApplyServerSideEncryptionByDefault": apply, "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled"))}
        )
    return {"Rules": rules}


def _lifecycle(props: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in props["LifecycleConfiguration"]["Rules"]:
        out: dict[str, Any] = {
            "ID": rule.get("Id", "rule"),
            "Status": rule["Status"],
            "Filter": {"Prefix": rule.get("Prefix", "")},
        }
        if "ExpirationInDays" in rule:
            out["Expiration"] = {"Days": rule["ExpirationInDays"]}
        if "NoncurrentVersionExpiration" in rule:
            out["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            }
        if "AbortIncompleteMultipartUpload" in rule:
            out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        rules.append(out)
    return {"Rules": rules}

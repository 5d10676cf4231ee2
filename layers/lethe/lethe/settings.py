"""Deployment settings, read from the environment once per cold start: every LETHE_* variable (its
name without the prefix, in any case, is the field) and AWS_REGION, validated by one pydantic model.
(pydantic-settings would read them the same way; importing it and python-dotenv cost every cold
start some 50 ms for this.)"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_REPO_INVENTORY = Path(__file__).resolve().parents[3] / "config" / "inventory.yaml"
ENV_PREFIX = "LETHE_"


class Settings(BaseModel):
    """Everything a function needs to find its resources. Defaults suit the local stack and tests,
    where every resource is named by its logical id in template.yaml."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    inventory: Annotated[
        Path, Field(description="Path of the data map (inventory.yaml, or the layer's compiled inventory.pickle)")
    ] = _REPO_INVENTORY
    requests_table: str = "RequestsTable"
    consents_table: str = "ConsentsTable"
    audit_table: str = "AuditTable"
    suppression_table: str = "SuppressionTable"
    vault_table: str = "VaultTable"
    control_table: str = "ControlTable"
    ledger_table: str = "ErasureLedgerTable"
    idempotency_table: str = "IdempotencyTable"
    export_bucket: str = "lethe-exportbucket"
    data_key_id: Annotated[str, Field(description="KMS key for exports (SSE-KMS); empty uses the bucket default")] = ""
    work_queue_url: str = ""
    retention_queue_url: str = ""
    notification_queue_url: str = ""
    replay_queue_url: str = ""
    subject_key_secret: str = "SubjectKeySecret"  # noqa: S105 - the secret's name, not its value
    sender_email: str = "privacy@example.com"
    operator_email: str = "privacy-ops@example.com"
    event_bus: str = "default"
    public_base_url: Annotated[str, Field(description="Base URL of the public API, for links in emails")] = (
        "http://127.0.0.1:3000"
    )
    admin_token: Annotated[
        str, Field(description="Bearer token for /admin routes on the local stack; empty means IAM only")
    ] = ""
    region: Annotated[str, Field(validation_alias="AWS_REGION")] = "us-east-1"
    service_data: Annotated[
        Path | None,
        Field(description="Folder of botocore data read first: the layer's endpoint table cut to Lethe's services"),
    ] = None
    dataset_tables: Annotated[
        dict[str, str],
        Field(description="Logical table id -> physical name, for inventory entries that name a logical id"),
    ] = Field(default_factory=dict)

    verification_code_ttl_minutes: int = 15
    verification_max_attempts: int = 5
    unverified_expiry_days: int = 7
    export_link_ttl_seconds: Annotated[int, Field(le=7 * 24 * 3600, gt=0)] = 7 * 24 * 3600
    request_contact_retention_days: Annotated[
        int,
        Field(ge=0, le=3650, description="Days an ended request keeps its address, name and corrections"),
    ] = 90
    # Submission limits (lethe.logic.intake): per address from one source, per source, and the codes any
    # address is mailed an hour from all sources together (the mailbox's protection).
    submissions_per_email_per_hour: int = 5
    submissions_per_ip_per_hour: int = 20
    # Double opt-in of consent contacts (lethe.logic.consent): how long a confirmation link works, and how
    # many confirmation emails one address, or one source address, may be sent per hour.
    consent_confirmation_ttl_hours: Annotated[int, Field(ge=1, le=7 * 24)] = 48
    consent_confirmations_per_email_per_hour: Annotated[int, Field(ge=1, le=100)] = 3
    consent_confirmations_per_ip_per_hour: Annotated[int, Field(ge=1, le=1000)] = 10
    codes_per_email_per_hour: int = 10
    # Proof of erasure: a subject index (a GSI) is eventually consistent, so an item it still shows
    # right after the erasure's writes is read again after a pause before it counts as left behind.
    erasure_verify_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    erasure_verify_delay_seconds: Annotated[float, Field(ge=0, le=30)] = 1.0

    # Retention sweep and vault purge (lethe.logic.retention, lethe.logic.vault_purge): how far back
    # the first vault purge looks, how many recent days every run re-reads, and how work is split.
    retention_first_run_lookback_days: Annotated[int, Field(ge=1, le=36500)] = 400
    retention_overlap_days: Annotated[int, Field(ge=0, le=366)] = 7
    retention_days_per_task: Annotated[int, Field(ge=1, le=366)] = 31
    retention_scan_segments: Annotated[int, Field(ge=1, le=1000)] = 4
    retention_isolation_days: Annotated[
        int, Field(ge=0, description="Days an item isolated by a retention rule stays in the vault")
    ] = 30
    vault_hold_recheck_days: Annotated[int, Field(ge=1, le=366)] = 1
    # Long sweeps retry a throttled or failed call in place (after the SDK's own retries), so one
    # transient error does not throw away the rest of a task (lethe.aws.retry_transient).
    transient_retries: Annotated[int, Field(ge=0, le=10)] = 4
    transient_retry_base_ms: Annotated[int, Field(ge=0, le=10_000)] = 100

    # The privacy inbox (lethe.logic.inbound_email): where SES stores raw inbound messages, the address
    # people write to, how long the operator's inbox keeps an unfiled message, and the largest message read.
    inbound_bucket: str = "lethe-inboundemailbucket"
    inbound_prefix: str = "inbound/"
    privacy_address: Annotated[str, Field(description="The address the policies tell people to write to")] = (
        "privacy@example.com"
    )
    inbox_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    inbound_max_bytes: Annotated[int, Field(ge=1024, le=40 * 1024 * 1024)] = 10 * 1024 * 1024
    # Recipients told of an erasure, rectification or restriction (lethe.logic.recipients), and manual
    # datasets' tasks for their owners (lethe.logic.manual_tasks).
    recipient_notice_queue_url: str = ""
    recipient_secrets: Annotated[
        dict[str, str],
        Field(description="Logical secret id -> Secrets Manager ARN, for recipients' webhook secrets"),
    ] = Field(default_factory=dict)
    recipient_webhook_timeout_seconds: Annotated[float, Field(gt=0, le=20)] = 5.0
    # Matches the queue's redrive policy (maxReceiveCount): the last receive marks the notice failed.
    recipient_notice_max_receives: Annotated[int, Field(ge=1, le=20)] = 5
    recipient_notice_backoff_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    manual_task_remind_after_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 48

    # ---- OpenDSR processor API (lethe.api.opendsr): the signing key, its certificate and domain, the
    # callback queue, the window in which a controller may still cancel, and per-controller tokens (local).
    processor_key_id: Annotated[str, Field(description="KMS asymmetric key (SIGN_VERIFY) that signs OpenDSR")] = ""
    processor_certificate: Annotated[str, Field(description="PEM certificate of the processor key")] = ""
    processor_domain: Annotated[
        str, Field(description="Domain the certificate is issued to; empty: host of public_base_url")
    ] = ""
    opendsr_callback_queue_url: str = ""
    opendsr_callback_dlq_url: str = ""
    opendsr_start_delay_seconds: Annotated[
        int, Field(ge=0, le=900, description="How long a controller's request stays pending (cancellable)")
    ] = 5
    opendsr_controller_tokens: Annotated[
        dict[str, str],
        Field(description="Local stack only: controller id -> bearer token (JSON); AWS uses IAM"),
    ] = Field(default_factory=dict)

    # S3 datasets (lethe.data.s3store): their buckets' physical names, and Lethe's index of which
    # objects hold which subject, kept from the buckets' ObjectCreated events.
    dataset_buckets: Annotated[
        dict[str, str],
        Field(description="Logical bucket id -> physical name, for S3 datasets that name a logical id"),
    ] = Field(default_factory=dict)
    object_index_table: str = "ObjectSubjectIndexTable"
    s3_part_bytes: Annotated[
        int, Field(ge=5 * 1024 * 1024, le=512 * 1024 * 1024, description="Multipart part size of a rewrite")
    ] = 8 * 1024 * 1024
    s3_rewrite_attempts: Annotated[int, Field(ge=1, le=20)] = 5

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings the environment gives; a field it does not name keeps its default. A bad value is
        a ValidationError naming the field."""
        values: dict[str, Any] = {
            name[len(ENV_PREFIX) :].lower(): value
            for name, value in environ.items()
            if name.upper().startswith(ENV_PREFIX)
        }
        if "AWS_REGION" in environ:
            values["AWS_REGION"] = environ["AWS_REGION"]
        return cls.model_validate(values)

    def secret_id(self, secret: str) -> str:
        """The Secrets Manager id of a secret named in the inventory (a logical id, or a name or ARN)."""
        return self.recipient_secrets.get(secret, secret)

    def bucket_name(self, bucket: str) -> str:
        """The physical name of a bucket named in the inventory (a logical id or already physical)."""
        return self.dataset_buckets.get(bucket, bucket)

    @field_validator(
        "dataset_tables", "recipient_secrets", "opendsr_controller_tokens", "dataset_buckets", mode="before"
    )
    @classmethod
    def _parse_json_map(cls, value: object) -> object:
        # Maps come from the environment as JSON objects (parsed here, so an empty value is no mapping).
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    def table_name(self, table: str) -> str:
        """The physical name of a table named in the inventory (a logical id or already physical)."""
        return self.dataset_tables.get(table, table)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment()


PUBLIC_BASE_URL_VARIABLE = "LETHE_PUBLIC_BASE_URL"


def adopt_invoke_url(event: dict[str, Any]) -> None:
    """An API function deployed without a PublicBaseUrl links to the API's invoke URL as API Gateway
    reports it in the event: the template cannot pass it, as the API itself refers to the function.
    Only in Lambda, only an execute-api domain, and only before the settings are first read."""
    if PUBLIC_BASE_URL_VARIABLE in os.environ or "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:
        return
    context = event.get("requestContext") or {}
    domain, api_id, stage = context.get("domainName"), context.get("apiId"), context.get("stage")
    if isinstance(domain, str) and api_id and stage and domain.startswith(f"{api_id}.execute-api."):
        os.environ[PUBLIC_BASE_URL_VARIABLE] = f"https://{domain}/{stage}"
        get_settings.cache_clear()

"""pynamodb models of Lethe's own tables. Their keys and indexes are checked against template.yaml
by tests/unit/test_template_models.py; the table names are bound from settings by `bind_models`."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from lethe.settings import Settings


class RequestsByStatus(GlobalSecondaryIndex["RequestSummaryRecord"]):
    class Meta:
        index_name = "by_status_due"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    due_at = UnicodeAttribute(range_key=True)


class RequestsBySubject(GlobalSecondaryIndex["RequestSummaryRecord"]):
    class Meta:
        index_name = "by_subject"
        projection = KeysOnlyProjection()

    subject_ref = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RequestsByContactScrub(GlobalSecondaryIndex["RequestSummaryRecord"]):
    """Sparse: only ended requests that still hold contact details carry pii_scrub, so the sweep
    finds the ones whose period is over by Query, and a scrubbed row leaves the index."""

    class Meta:
        index_name = "by_pii_scrub"
        projection = KeysOnlyProjection()

    pii_scrub = UnicodeAttribute(hash_key=True)
    pii_scrub_at = UnicodeAttribute(range_key=True)


class RequestSummaryRecord(Model):
    """One row per request: pk REQ#<id>, sk SUMMARY. Its events share the partition."""

    class Meta:
        table_name = "RequestsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    request_id = UnicodeAttribute()
    type = UnicodeAttribute()
    status = UnicodeAttribute()
    regulation = UnicodeAttribute()
    created_at = UnicodeAttribute()
    due_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    subject_ref = UnicodeAttribute()
    # Contact details are needed to answer the subject; never logged, never in the audit.
    email = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)
    corrections = JSONAttribute(null=True)
    code_hash = UnicodeAttribute(null=True)
    code_expires_at = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    # Digests of the codes already counted as attempts (a retried attempt is not counted twice).
    tried_codes = UnicodeSetAttribute(null=True)
    extended = BooleanAttribute(default=False)
    extension_reason = UnicodeAttribute(null=True)
    denial_reason = UnicodeAttribute(null=True)
    datasets_pending = UnicodeSetAttribute(null=True)
    datasets_done = UnicodeSetAttribute(null=True)
    datasets_failed = UnicodeSetAttribute(null=True)
    # Identities learned through datasets' links, as [identity, value, round first looked up]: raw
    # values (an account id), needed to reach the subject's items; never logged, never in the audit.
    identities = JSONAttribute(null=True)
    identity_round = NumberAttribute(null=True)
    outcome = JSONAttribute(null=True)
    version = NumberAttribute(default=0)
    # The key of an erasure's pseudonyms (lethe.data.masking.RequestKey); removed when it ends.
    erasure_key = UnicodeAttribute(null=True)
    # Set when the request ends: its contact details go at pii_scrub_at (lethe.logic.own_data).
    pii_scrub = UnicodeAttribute(null=True)
    pii_scrub_at = UnicodeAttribute(null=True)
    # An authorized agent acting for the subject ({name, email}): told the status, never logged.
    agent = JSONAttribute(null=True)
    # The controller that sent the request by OpenDSR (lethe.logic.opendsr); absent for a subject's own.
    controller = UnicodeAttribute(null=True)

    by_status = RequestsByStatus()
    by_subject = RequestsBySubject()
    by_pii_scrub = RequestsByContactScrub()


class RequestEventRecord(Model):
    """One row per transition or task outcome: pk REQ#<id>, sk EVENT#<iso time>#<n>."""

    class Meta:
        table_name = "RequestsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = UnicodeAttribute()
    kind = UnicodeAttribute()
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute(null=True)
    actor = UnicodeAttribute(default="system")
    detail = JSONAttribute(null=True)


class GrantedPurposeIndex(GlobalSecondaryIndex["ConsentRecord"]):
    class Meta:
        index_name = "by_granted_purpose"
        projection = AllProjection()

    granted_purpose = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class ContactRefIndex(GlobalSecondaryIndex["ConsentRecord"]):
    """Sparse: only rows that can reach an address carry contact_ref (an erasure finds them by Query)."""

    class Meta:
        index_name = "by_contact_ref"
        projection = AllProjection()

    contact_ref = UnicodeAttribute(hash_key=True)
    pk = UnicodeAttribute(range_key=True)


class ConsentRecord(Model):
    """Current state: pk SUBJ#<subject_id>, sk PURPOSE#<name>. History (append-only):
    sk HIST#<iso time>#<seq>#<name>."""

    class Meta:
        table_name = "ConsentsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    subject_id = UnicodeAttribute()
    purpose = UnicodeAttribute()
    granted = BooleanAttribute()
    policy_version = UnicodeAttribute()
    source = UnicodeAttribute()
    at = UnicodeAttribute()
    ip_hash = UnicodeAttribute(null=True)
    user_agent_family = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    # Set only on current rows of granted purposes: makes by_granted_purpose sparse.
    granted_purpose = UnicodeAttribute(null=True)
    contact_ref = UnicodeAttribute(null=True)
    # The subscriber's address, only on current rows of granted marketing_email / policy_updates;
    # never on history rows, never logged.
    contact = UnicodeAttribute(null=True)
    # An address given but not yet confirmed (double opt-in): nothing but its confirmation is sent to it.
    pending_contact = UnicodeAttribute(null=True)
    pending_contact_ref = UnicodeAttribute(null=True)

    by_granted_purpose = GrantedPurposeIndex()
    by_contact_ref = ContactRefIndex()


class ConsentDeviceRecord(Model):
    """A device id minted by Lethe: pk SUBJ#<device id>, sk DEVICE. Only a hash of its secret is kept."""

    class Meta:
        table_name = "ConsentsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    subject_id = UnicodeAttribute()
    secret_hash = UnicodeAttribute()
    at = UnicodeAttribute()


class ConsentLinkRecord(Model):
    """A guest device linked to an account: pk SUBJ#<id>, sk LINK#<other id>, one row on each side."""

    class Meta:
        table_name = "ConsentsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    subject_id = UnicodeAttribute()
    linked_id = UnicodeAttribute()
    role = UnicodeAttribute()
    at = UnicodeAttribute()


class AuditRecord(Model):
    """Append-only, hash-chained. No raw PII: subjects appear only as HMAC references."""

    class Meta:
        table_name = "AuditTable"

    chain = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    at = UnicodeAttribute()
    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)
    subject_ref = UnicodeAttribute(null=True)
    dataset = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)
    prev_hash = UnicodeAttribute()
    hash = UnicodeAttribute()


class SuppressionRecord(Model):
    class Meta:
        table_name = "SuppressionTable"

    subject_ref = UnicodeAttribute(hash_key=True)
    reason = UnicodeAttribute()
    at = UnicodeAttribute()
    source = UnicodeAttribute(null=True)


class VaultByPurgeDay(GlobalSecondaryIndex["VaultRecord"]):
    class Meta:
        index_name = "by_purge_day"
        projection = KeysOnlyProjection()

    purge_day = UnicodeAttribute(hash_key=True)
    purge_at = UnicodeAttribute(range_key=True)


class VaultBySubject(GlobalSecondaryIndex["VaultRecord"]):
    class Meta:
        index_name = "by_subject"
        projection = KeysOnlyProjection()

    subject_ref = UnicodeAttribute(hash_key=True)
    vault_id = UnicodeAttribute(range_key=True)


class VaultRecord(Model):
    """An isolated item: out of every processing path until its purge date. Own KMS key."""

    class Meta:
        table_name = "VaultTable"

    vault_id = UnicodeAttribute(hash_key=True)
    dataset = UnicodeAttribute()
    table = UnicodeAttribute()
    item_key = JSONAttribute()
    item = JSONAttribute()
    subject_ref = UnicodeAttribute(null=True)
    reason = UnicodeAttribute()
    isolated_at = UnicodeAttribute()
    purge_at = UnicodeAttribute()
    purge_day = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)
    hold_ids = ListAttribute(of=UnicodeAttribute, null=True)

    by_purge_day = VaultByPurgeDay()
    by_subject = VaultBySubject()


class ControlRecord(Model):
    """Legal holds (pk HOLD), policy versions (pk POLICY), rate counters (pk RATE#..., TTL), email
    confirmations of the consent ledger (pk CONFIRM#<token hash>, TTL)."""

    class Meta:
        table_name = "ControlTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = UnicodeAttribute(null=True)
    data = JSONAttribute(null=True)
    # Named `tally` in Python so it does not hide Model.count; stored as `count`.
    tally = NumberAttribute(null=True, attr_name="count")
    # Rate counters: the submissions already counted in the window (a retried one counts once).
    seen = UnicodeSetAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    active = BooleanAttribute(null=True)
    lifted_at = UTCDateTimeAttribute(null=True)


class LedgerRecord(Model):
    """The erasure ledger (lethe.data.ledger): pk ITEM#<dataset>#<key ref> or SUBJECT#<subject ref>.
    HMACs, a dataset name, an action and times only; never a raw value."""

    class Meta:
        table_name = "ErasureLedgerTable"

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    at = UnicodeAttribute()
    dataset = UnicodeAttribute(null=True)
    key_ref = UnicodeAttribute(null=True)
    subject_ref = UnicodeAttribute(null=True)
    action = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    reference = UnicodeAttribute(null=True)


# ---------------------------------------------------------------- people around a request
# Rows of a request's partition. While one needs an operator (a notice that kept failing, a manual task
# still open) it carries `status` and `due_at`, so it shows in the by_status_due index under a status no
# request has ("notice_failed", "manual_open"): listed by Query, never by Scan. Done, it leaves the index.


class NoticesByState(GlobalSecondaryIndex["RecipientNoticeRecord"]):
    class Meta:
        index_name = "by_status_due"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    due_at = UnicodeAttribute(range_key=True)


class RecipientNoticeRecord(Model):
    """A notice to one recipient of one dataset (GDPR Art. 19): pk REQ#<id>, sk NOTICE_TO#<notice id>."""

    class Meta:
        table_name = "RequestsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    request_id = UnicodeAttribute()
    notice_id = UnicodeAttribute()
    dataset = UnicodeAttribute()
    recipient = UnicodeAttribute()
    channel = UnicodeAttribute()  # email | webhook
    state = UnicodeAttribute()  # pending | sent | failed
    # The notice's own moment and body fields: every attempt sends the same body (same signature).
    created_at = UnicodeAttribute()
    request_type = UnicodeAttribute()
    subject_ref = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    queued = BooleanAttribute(default=False)
    last_error = UnicodeAttribute(null=True)
    told_at = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)

    by_state = NoticesByState()


class ManualTasksByState(GlobalSecondaryIndex["ManualTaskRecord"]):
    class Meta:
        index_name = "by_status_due"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    due_at = UnicodeAttribute(range_key=True)


class ManualTaskRecord(Model):
    """A manual dataset's task for its owner: pk REQ#<id>, sk MANUAL#<task>."""

    class Meta:
        table_name = "RequestsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    request_id = UnicodeAttribute()
    task = UnicodeAttribute()
    dataset = UnicodeAttribute()
    owner = UnicodeAttribute()
    request_type = UnicodeAttribute()
    state = UnicodeAttribute()  # open | done
    opened_at = UnicodeAttribute()
    reminded_at = UnicodeAttribute(null=True)
    reminders = NumberAttribute(default=0)
    done_at = UnicodeAttribute(null=True)
    done_by = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    # What the owner found (access): kept until the task's result and export part are written.
    items = JSONAttribute(null=True)
    status = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)

    by_state = ManualTasksByState()


class ObjectSubjectRecord(Model):
    """The subject index of S3 datasets (lethe.data.s3store): which object holds which subject.
    pk "<dataset>#<subject ref>", sk the object key; an erased subject's entries expire (TTL)."""

    class Meta:
        table_name = "ObjectSubjectIndexTable"

    subject = UnicodeAttribute(hash_key=True)
    object_key = UnicodeAttribute(range_key=True)
    indexed_at = UnicodeAttribute(null=True)
    version_id = UnicodeAttribute(null=True)
    erased_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


ALL_MODELS: dict[str, list[type[Model]]] = {
    "RequestsTable": [RequestSummaryRecord, RequestEventRecord, RecipientNoticeRecord, ManualTaskRecord],
    "ConsentsTable": [ConsentRecord, ConsentLinkRecord, ConsentDeviceRecord],
    "AuditTable": [AuditRecord],
    "SuppressionTable": [SuppressionRecord],
    "VaultTable": [VaultRecord],
    "ControlTable": [ControlRecord],
    "ErasureLedgerTable": [LedgerRecord],
    "ObjectSubjectIndexTable": [ObjectSubjectRecord],
}

_SETTING_FOR = {
    "RequestsTable": "requests_table",
    "ConsentsTable": "consents_table",
    "AuditTable": "audit_table",
    "SuppressionTable": "suppression_table",
    "VaultTable": "vault_table",
    "ControlTable": "control_table",
    "ErasureLedgerTable": "ledger_table",
    "ObjectSubjectIndexTable": "object_index_table",
}


def bind_models(settings: Settings) -> None:
    """Point every model at the physical tables named by settings (once per cold start)."""
    for logical_id, models in ALL_MODELS.items():
        for model in models:
            model.Meta.table_name = getattr(settings, _SETTING_FOR[logical_id])
            model.Meta.region = settings.region

"""Domain errors. HTTP mapping lives in one place: lethe.api.errors."""

from __future__ import annotations


class LetheError(Exception):
    """Base of every error Lethe raises on purpose. `code` is stable and shown to clients."""

    code = "lethe_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InventoryError(LetheError):
    """The data map is invalid. Raised at load, naming the dataset and field at fault."""

    code = "invalid_inventory"

    def __init__(self, message: str, *, dataset: str | None = None, field: str | None = None) -> None:
        where = ".".join(p for p in ("datasets" if dataset else None, dataset, field) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.dataset = dataset
        self.field = field


class ConfigurationError(LetheError):
    code = "configuration_error"


class RequestNotFound(LetheError):
    code = "request_not_found"


class InvalidTransition(LetheError):
    code = "invalid_transition"


class VerificationFailed(LetheError):
    code = "verification_failed"


class VerificationLocked(LetheError):
    code = "verification_locked"


class VerificationExpired(LetheError):
    code = "verification_expired"


class RateLimited(LetheError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(LetheError):
    code = "payload_too_large"


class InvalidCorrection(LetheError):
    """A rectification names a field the subject may not correct, or a value unfit for its field."""

    code = "invalid_correction"


class InvalidIdempotencyKey(LetheError):
    """An Idempotency-Key header that is not 16 to 64 URL-safe characters."""

    code = "invalid_idempotency_key"


class MalformedBody(LetheError):
    """A request body that cannot be read: not UTF-8, not valid base64, nested too deeply."""

    code = "malformed_body"


class LegalHoldActive(LetheError):
    code = "legal_hold_active"


class LegalHoldNotFound(LetheError):
    code = "legal_hold_not_found"


class InvalidConsent(LetheError):
    code = "invalid_consent"


class ConsentNotFound(LetheError):
    code = "consent_not_found"


class InvalidToken(LetheError):
    code = "invalid_token"


class ConfirmationExpired(LetheError):
    """A genuine email confirmation link whose time ran out."""

    code = "confirmation_expired"


class PolicyVersionExists(LetheError):
    code = "policy_version_exists"


class ExtensionNotAllowed(LetheError):
    code = "extension_not_allowed"


class Unauthorized(LetheError):
    code = "unauthorized"


class Forbidden(LetheError):
    code = "forbidden"


class DatasetUnavailable(LetheError):
    """A table named in the inventory cannot be reached. The task fails and is retried."""

    code = "dataset_unavailable"


class ConflictingWrite(LetheError):
    """An item changed between read and write; the write was refused by its condition."""

    code = "conflicting_write"


class ExportLinkExpired(LetheError):
    """An export link that was genuine but is no longer valid (or its export is gone)."""

    code = "export_link_expired"


class InvalidCursor(LetheError):
    """A paging cursor that this API did not hand out."""

    code = "invalid_cursor"


class UnknownDataset(LetheError):
    """A dataset name that the inventory does not define."""

    code = "unknown_dataset"


class RunIncomplete(LetheError):
    """A scheduled run did what it could and some of its jobs failed; the next run carries on. Raised
    after the rest is done, so the run counts as failed (alarms, the schedule's dead-letter queue)."""

    code = "run_incomplete"


class RetentionTaskFailed(LetheError):
    """A retention task failed part-way. `counts` is what it did before, so the audit records every
    item it changed; the task is redelivered and carries on with what is left."""

    code = "retention_task_failed"

    def __init__(self, message: str, *, counts: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts


class RestoredTableNotFound(LetheError):
    """A replay names a table that does not exist (or that Lethe may not read)."""

    code = "table_not_found"


class ReplayTableMismatch(LetheError):
    """A replay names a table whose key is not the dataset's: it is no copy of that dataset's table."""

    code = "table_mismatch"


class ReplayJobNotFound(LetheError):
    code = "replay_job_not_found"


# ---------------------------------------------------------------- the privacy inbox and reports
class InboxItemNotFound(LetheError):
    code = "inbox_item_not_found"


class InvalidReportPeriod(LetheError):
    code = "invalid_report_period"


class InvalidManualTask(LetheError):
    """A manual task's completion carries items the dataset does not declare, or items where none belong."""

    code = "invalid_manual_task"

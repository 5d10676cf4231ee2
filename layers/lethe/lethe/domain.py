"""Domain vocabulary shared by every layer: request types, statuses, regulations."""

from __future__ import annotations

from enum import StrEnum


class RequestType(StrEnum):
    access = "access"
    portability = "portability"
    rectification = "rectification"
    erasure = "erasure"
    restriction = "restriction"
    objection = "objection"
    marketing_opt_out = "marketing_opt_out"
    consent_withdrawal = "consent_withdrawal"
    child_data_report = "child_data_report"
    complaint = "complaint"


class Status(StrEnum):
    identity_unverified = "identity_unverified"
    pending = "pending"
    awaiting_approval = "awaiting_approval"
    in_progress = "in_progress"
    completed = "completed"
    denied = "denied"
    canceled = "canceled"
    expired = "expired"
    failed = "failed"


TERMINAL_STATUSES = frozenset({Status.completed, Status.denied, Status.canceled, Status.expired})

# Types a person must approve after verification (DESIGN.md: the flow of one request).
NEEDS_APPROVAL = frozenset({RequestType.rectification, RequestType.child_data_report, RequestType.complaint})


class Regulation(StrEnum):
    gdpr = "gdpr"
    uk_gdpr = "uk-gdpr"
    ccpa = "ccpa"
    dpf = "dpf"
    default = "default"

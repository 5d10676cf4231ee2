"""Domain vocabulary shared by every layer: request types, statuses, regulations, what an address is."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


class Model(BaseModel):
    """The base of Lethe's pydantic models. Each builds its validator on first use, so a function's
    INIT pays only for the models it uses, not for every route and task of the layer it imports."""

    model_config = ConfigDict(defer_build=True)


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

    @property
    def label(self) -> str:
        """The type in words, for a person: "marketing opt-out", "child data report"."""
        return self.value.replace("_opt_out", "_opt-out").replace("_", " ")

    @property
    def with_article(self) -> str:
        """ "an access", "an erasure", "a complaint": the label with its indefinite article."""
        return ("an " if self.label[0] in "aeiou" else "a ") + self.label


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


# An address is one plain addr-spec, local@domain: a dot-atom local part (RFC 5322 atext; SES sends no
# SMTPUTF8, so ASCII) and a dotted host name (internationalized names are sent as IDNA). No display name,
# group, list, comment, quoted string or route: nothing a mail library could read as another recipient.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL_CHAR = r"(?:[A-Za-z0-9]|[^\x00-\x9f])"
_LABEL = rf"{_LABEL_CHAR}(?:(?:{_LABEL_CHAR}|-){{0,61}}{_LABEL_CHAR})?"
EMAIL_PATTERN = (
    rf"^{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+(?:[A-Za-z]|[^\x00-\x9f])(?:{_LABEL_CHAR}|-){{0,61}}{_LABEL_CHAR}$"
)
EMAIL_MAX_LENGTH = 254
_LOCAL_MAX_LENGTH = 64
_EMAIL = re.compile(EMAIL_PATTERN)


def is_plain_address(value: str) -> bool:
    """True for one plain `local@domain` (EMAIL_PATTERN, within the RFC 5321 lengths, with no invisible
    or control characters), which every mail library reads as exactly that one recipient."""
    if len(value) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(value):
        return False
    local, _, host = value.rpartition("@")
    if len(local) > _LOCAL_MAX_LENGTH:
        return False
    if any(unicodedata.category(char)[0] in "CZ" for char in host if ord(char) > 0x7F):
        return False
    try:
        ascii_host(host)
    except ValueError:
        return False
    return True


def ascii_host(host: str) -> str:
    """The host name as mail servers take it: internationalized labels as IDNA (xn--...)."""
    return host if host.isascii() else host.encode("idna").decode("ascii")


def _plain_address(value: str) -> str:
    if not is_plain_address(value):
        raise ValueError("must be one plain address, local@domain (no display name, group or list)")
    return value


EmailAddress = Annotated[
    str,
    # The pattern is documented in the spec; the check is is_plain_address, whose refusal says what is wrong.
    Field(
        max_length=EMAIL_MAX_LENGTH,
        json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
        description="One plain address, local@domain",
    ),
    AfterValidator(_plain_address),
]


# ------------------------------------------------------------------ the clock


def utc_now(now: datetime | None = None) -> datetime:
    """The moment in UTC: `now` when the caller names one (a test, a replayed event), else the clock."""
    return (now or datetime.now(UTC)).astimezone(UTC)


def utc_stamp(now: datetime | None = None) -> str:
    """That moment as rows record it: ISO 8601 in UTC, to the second."""
    return utc_now(now).isoformat(timespec="seconds")


# ------------------------------------------------------------------ views of stored rows

# A tally a row may not hold yet (None, or absent): 0 until something is counted.
Tally = Annotated[int, BeforeValidator(lambda value: int(value or 0))]

"""Legal deadlines for answering a data-subject request, per regulation, and how far each may be extended.

The rules are data: one row per regulation (DESIGN.md, "Deadlines"). A month is a calendar month, so a
request received on 31 January under the GDPR is due on the last day of February.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lethe.domain import Regulation
from lethe.durations import Duration


@dataclass(frozen=True)
class DeadlineRule:
    """How long a controller has to answer, and by how much more it may extend (None: no extension)."""

    deadline: Duration
    extension: Duration | None
    basis: str


DEADLINES: dict[Regulation, DeadlineRule] = {
    Regulation.gdpr: DeadlineRule(
        Duration.parse("P1M"), Duration.parse("P2M"), "GDPR Art. 12(3): one month, extendable by two further months"
    ),
    Regulation.uk_gdpr: DeadlineRule(
        Duration.parse("P1M"), Duration.parse("P2M"), "UK GDPR Art. 12(3): one month, extendable by two further months"
    ),
    Regulation.ccpa: DeadlineRule(
        Duration.parse("P45D"), Duration.parse("P45D"), "CCPA 1798.130: 45 days, extendable once by 45 days"
    ),
    Regulation.dpf: DeadlineRule(Duration.parse("P45D"), None, "EU-US Data Privacy Framework: 45 days"),
    Regulation.default: DeadlineRule(Duration.parse("P30D"), None, "Lethe default: 30 days"),
}


def rule_for(regulation: Regulation | str | None) -> DeadlineRule:
    """The rule of a regulation; None (no regulation named) is the default rule."""
    return DEADLINES[Regulation(regulation) if regulation else Regulation.default]


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("deadlines are computed from timezone-aware instants")
    return moment.astimezone(UTC)


def due_at(regulation: Regulation | str | None, received_at: datetime) -> datetime:
    """When the answer is due: the regulation's deadline counted from receipt (UTC, calendar months clamp)."""
    return rule_for(regulation).deadline.after(_utc(received_at))


def extension_limit(regulation: Regulation | str | None) -> Duration | None:
    """By how much the deadline may be extended (None when the regulation allows no extension)."""
    return rule_for(regulation).extension


def latest_extended_due_at(regulation: Regulation | str | None, received_at: datetime) -> datetime | None:
    """The furthest an extension may push `due_at`: the extension counted from the original deadline.
    None when the regulation allows no extension. An admin extension must not go past this."""
    extension = extension_limit(regulation)
    if extension is None:
        return None
    return extension.after(due_at(regulation, received_at))

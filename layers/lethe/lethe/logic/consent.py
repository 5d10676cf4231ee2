"""The consent ledger: cookie and communication choices per subject, with an append-only history.

Decisions (documented here because the API follows them):
- Purposes are configuration: PURPOSES below. `strictly_necessary` cannot be refused.
- A POST records only the purposes it names; the others keep their state.
- `Sec-GPC: 1` (Global Privacy Control) records a refusal of marketing_email, even when the body
  grants it or does not name it; the history row carries the note "gpc".
- An email is accepted only with a grant of marketing_email or policy_updates, and is kept only on
  the current rows of those granted purposes (never in history, never in logs), so subscribers can
  be reached. A grant without an address (a cookie banner's "accept all") is recorded but unreachable.
- Linking a guest device to an account: for each purpose the most recent choice of the two wins and
  becomes the account's current state; both histories show the link. The link is made once, at
  sign-up; later choices on the device stay on the device.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lethe.data import audit
from lethe.data import consents as ledger
from lethe.data.consents import ConsentChange, ConsentState
from lethe.errors import ConsentNotFound, InvalidConsent
from lethe.keys import key_ring, normalize_email
from lethe.logic import policy_versions
from lethe.logic.suppression import suppress

SUBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{5,127}$"
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
EMAIL_PATTERN = r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$"


class Purpose(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    refusable: bool
    contact: Annotated[bool, Field(description="Granting it may come with an address to reach the subject")] = False


PURPOSES: dict[str, Purpose] = {
    p.name: p
    for p in (
        Purpose(
            name="strictly_necessary",
            description="Cookies the service cannot work without (sign-in, security, load balancing)",
            refusable=False,
        ),
        Purpose(
            name="performance", description="Counting visits and measuring how the service performs", refusable=True
        ),
        Purpose(name="functionality", description="Remembering choices such as language and layout", refusable=True),
        Purpose(
            name="marketing_email",
            description="Marketing email about products and offers",
            refusable=True,
            contact=True,
        ),
        Purpose(
            name="policy_updates",
            description="Notice by email when the privacy policy changes",
            refusable=True,
            contact=True,
        ),
    )
}
MARKETING = "marketing_email"
CONTACT_PURPOSES = frozenset(p.name for p in PURPOSES.values() if p.contact)


class PurposeView(BaseModel):
    granted: bool
    policy_version: str
    at: datetime
    source: str
    needs_reconsent: Annotated[bool, Field(description="Given under a version older than the latest published")]


class ConsentView(BaseModel):
    subject_id: str
    purposes: dict[str, PurposeView]
    latest_policy_version: str | None
    needs_reconsent: Annotated[bool, Field(description="True if any purpose needs re-consent")]
    linked: Annotated[list[str], Field(description="Device or account ids linked to this subject")] = []


class HistoryEntry(BaseModel):
    subject_id: str
    purpose: str
    granted: bool
    policy_version: str
    source: str
    at: datetime
    ip_hash: str | None = None
    user_agent_family: str | None = None
    note: str | None = None


_UA_FAMILIES = (
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chrome", re.compile(r"\bChrome/|\bCriOS/|\bChromium/")),
    ("Safari", re.compile(r"\bSafari/|\bAppleWebKit/")),
    ("curl", re.compile(r"^curl/")),
)


def user_agent_family(user_agent: str | None) -> str | None:
    """A coarse family ("Chrome", "Firefox", "Safari", "Edge", "Opera", "curl", "other"); never the raw string."""
    if not user_agent:
        return None
    for family, pattern in _UA_FAMILIES:
        if pattern.search(user_agent):
            return family
    return "other"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _validate(purposes: dict[str, bool]) -> None:
    if not purposes:
        raise InvalidConsent("name at least one purpose")
    unknown = sorted(set(purposes) - set(PURPOSES))
    if unknown:
        raise InvalidConsent(f"unknown purpose(s): {', '.join(unknown)}; known: {', '.join(PURPOSES)}")
    refused = [name for name, granted in purposes.items() if not granted and not PURPOSES[name].refusable]
    if refused:
        raise InvalidConsent(f"{', '.join(refused)} cannot be refused: the service cannot work without it")


def record_consent(
    subject_id: str,
    purposes: dict[str, bool],
    *,
    policy_version: str,
    source: str,
    email: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    gpc: bool = False,
    now: datetime | None = None,
) -> ConsentView:
    _validate(purposes)
    if email is not None and not any(purposes.get(name) for name in CONTACT_PURPOSES):
        raise InvalidConsent("an email is accepted only with a grant of marketing_email or policy_updates")
    at = _now(now)
    choices = dict(purposes)
    notes: dict[str, str] = {}
    if gpc:
        choices[MARKETING] = False
        notes[MARKETING] = "gpc"

    ring = key_ring()
    contact, contact_ref = None, None
    if email is not None:
        contact = normalize_email(email)
        contact_ref = ring.subject_ref(contact)
    else:
        known = next((s for s in ledger.current(subject_id) if s.contact), None)
        if known:
            contact, contact_ref = known.contact, known.contact_ref

    ip_hash = ring.hash_ip(ip) if ip else None
    family = user_agent_family(user_agent)
    states, changes = [], []
    for name, granted in choices.items():
        reach = granted and name in CONTACT_PURPOSES
        states.append(
            ConsentState(
                subject_id=subject_id,
                purpose=name,
                granted=granted,
                policy_version=policy_version,
                source=source,
                at=at,
                note=notes.get(name),
                contact=contact if reach else None,
                contact_ref=contact_ref if reach else None,
            )
        )
        changes.append(
            ConsentChange(
                subject_id=subject_id,
                purpose=name,
                granted=granted,
                policy_version=policy_version,
                source=source,
                at=at,
                ip_hash=ip_hash,
                user_agent_family=family,
                note=notes.get(name),
            )
        )
    ledger.write_changes(states, changes)
    return _view(subject_id, ledger.current(subject_id))


def _needs_reconsent(
    state: ConsentState, latest: policy_versions.PolicyVersion | None, order: dict[str, datetime]
) -> bool:
    if latest is None or state.policy_version == latest.version:
        return False
    given_under = order.get(state.policy_version)
    # A version never published counts as older than the latest published one.
    return given_under is None or given_under < latest.published_at


def _view(subject_id: str, states: list[ConsentState]) -> ConsentView:
    versions = policy_versions.published()
    latest = versions[-1] if versions else None
    order = {v.version: v.published_at for v in versions}
    purposes = {
        s.purpose: PurposeView(
            granted=s.granted,
            policy_version=s.policy_version,
            at=s.at,
            source=s.source,
            needs_reconsent=_needs_reconsent(s, latest, order),
        )
        for s in sorted(states, key=lambda s: s.purpose)
    }
    return ConsentView(
        subject_id=subject_id,
        purposes=purposes,
        latest_policy_version=latest.version if latest else None,
        needs_reconsent=any(p.needs_reconsent for p in purposes.values()),
        linked=[link.linked_id for link in ledger.links(subject_id)],
    )


def get_consent(subject_id: str) -> ConsentView:
    states = ledger.current(subject_id)
    if not states:
        raise ConsentNotFound("no consent is recorded for this subject")
    return _view(subject_id, states)


def get_history(subject_id: str) -> list[HistoryEntry]:
    """Every change, oldest first. An account's history also holds the history of the guest devices
    linked to it (each entry names its subject_id), so the account's state can be traced to its source."""
    changes = ledger.history(subject_id)
    if not changes:
        raise ConsentNotFound("no consent is recorded for this subject")
    for link in ledger.links(subject_id):
        if link.role == "account":
            changes += ledger.history(link.linked_id)
    changes.sort(key=lambda c: c.at)  # stable: rows written together keep their order
    return [HistoryEntry(**c.model_dump()) for c in changes]


def link_device(device_id: str, account_id: str, *, source: str = "signup", now: datetime | None = None) -> ConsentView:
    """Join a guest device's choices to an account: per purpose, the most recent choice wins."""
    if device_id == account_id:
        raise InvalidConsent("a subject cannot be linked to itself")
    device_states = ledger.current(device_id)
    if not device_states:
        raise ConsentNotFound("no consent is recorded for this device")
    at = _now(now)
    if not ledger.save_link(device_id, account_id, at):
        return get_consent(account_id)  # already linked: linking again changes nothing
    account_now = {s.purpose: s for s in ledger.current(account_id)}
    adopted = [d for d in device_states if d.purpose not in account_now or d.at > account_now[d.purpose].at]
    states = [
        s.model_copy(update={"subject_id": account_id, "at": at, "source": source, "note": f"linked from {device_id}"})
        for s in adopted
    ]

    def link_change(subject_id: str, state: ConsentState, note: str) -> ConsentChange:
        return ConsentChange(
            subject_id=subject_id,
            purpose=state.purpose,
            granted=state.granted,
            policy_version=state.policy_version,
            source=source,
            at=at,
            note=note,
        )

    changes = [link_change(account_id, s, f"linked from {device_id}") for s in adopted]
    changes += [link_change(device_id, s, f"linked to {account_id}") for s in device_states]
    if not adopted:  # the account's choices are all newer: its history still shows the link
        kept = next(iter(account_now.values()), None)
        if kept is not None:
            changes.append(
                ConsentChange(
                    subject_id=account_id,
                    purpose=kept.purpose,
                    granted=kept.granted,
                    policy_version=kept.policy_version,
                    source=source,
                    at=at,
                    note=f"linked from {device_id}",
                )
            )
    ledger.write_changes(states, changes)
    return get_consent(account_id)


def _withdraw_subject(state: ConsentState, source: str, at: datetime) -> None:
    note = f"withdrawn: {source}"
    ledger.write_changes(
        [
            state.model_copy(
                update={
                    "granted": False,
                    "at": at,
                    "source": source,
                    "note": note,
                    "contact": None,
                    "contact_ref": None,
                }
            )
        ],
        [
            ConsentChange(
                subject_id=state.subject_id,
                purpose=state.purpose,
                granted=False,
                policy_version=state.policy_version,
                source=source,
                at=at,
                note=note,
            )
        ],
    )


def withdraw_marketing(email: str, source: str) -> None:
    """Withdraw marketing for an address: suppress it, and refuse marketing_email for every subject of
    the ledger reachable at that address. Idempotent. Called by one-click unsubscribe and by verified
    objection, marketing_opt_out and consent_withdrawal requests."""
    ref = suppress(email, reason="marketing_opt_out", source=source)
    refs = set(key_ring().subject_refs(email))
    at = datetime.now(UTC)
    withdrawn = 0
    for state in list(ledger.granted_to(MARKETING)):
        if state.contact_ref in refs:
            _withdraw_subject(state, source, at)
            withdrawn += 1
    audit.append("marketing_withdrawn", subject_ref=ref, details={"source": source, "subjects": withdrawn}, at=at)


def erase_contacts(email: str, source: str) -> int:
    """An erasure: every current row that can reach this address forgets it (withdrawn, address and
    reference removed, a history row saying so). Idempotent. Returns how many rows there were."""
    at = datetime.now(UTC)
    states = ledger.contacts_for(key_ring().subject_refs(email))
    for state in states:
        _withdraw_subject(state, source, at)
    return len(states)

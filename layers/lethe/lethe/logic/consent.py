"""The consent ledger: cookie and communication choices per subject, with an append-only history.

Decisions (documented here because the API follows them):
- Who writes: a device is known by an id Lethe mints, with a secret of which only the hash is kept; the
  public API writes and reads a device's choices only with that secret. Accounts are written by the service
  that authenticated them, through the admin API (IAM in AWS, the bearer token locally).
- Purposes are configuration: PURPOSES below. `strictly_necessary` cannot be refused.
- A POST records only the purposes it names; the others keep their state.
- `Sec-GPC: 1` (Global Privacy Control) records a refusal of marketing_email, even when the body
  grants it or does not name it; the history row carries the note "gpc".
- An email is accepted only with a grant of marketing_email or policy_updates, and is kept only on
  the current rows of those granted purposes (never in history, never in logs), so subscribers can
  be reached. A grant without an address (a cookie banner's "accept all") is recorded but unreachable.
- Double opt-in: a new address is held as pending until the link of the one confirmation email sent
  to it is followed (random token stored hashed, one-time, expiring). Nothing else is ever sent to a
  pending address. Confirmation emails are limited per address and per source IP, and never go to a
  suppressed address; the answer is the same either way, so it tells nobody about the address.
- Linking a guest device to an account: for each purpose the most recent choice of the two wins and
  becomes the account's current state; both histories show the link. The link is made once, at
  sign-up; later choices on the device stay on the device.
- History rows keep an HMAC of the IP salted with the subject id: it proves, to whoever holds the key,
  that a given IP recorded a choice, without linking one subject's rows to another's. It is still
  pseudonymous (IPv4 is small enough to test every address with the key), so only operators see it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field

from lethe import domain
from lethe.data import audit
from lethe.data import consents as ledger
from lethe.data.consents import Confirmation, ConsentChange, ConsentState
from lethe.data.mail import send_email
from lethe.domain import Model, utc_now
from lethe.errors import (
    ConfirmationExpired,
    ConsentNotFound,
    Forbidden,
    InvalidConsent,
    InvalidToken,
    RateLimited,
    Unauthorized,
)
from lethe.keys import KeyRing, key_ring, normalize_email
from lethe.logic import policy_versions, ratelimit
from lethe.logic.suppression import is_suppressed, suppress
from lethe.settings import get_settings

SUBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{5,127}$"
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
DEVICE_SECRET_HEADER = "X-Lethe-Device-Secret"  # noqa: S105 - a header name
DEVICE_PREFIX = "dev-"
# A confirmation token is secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet.
CONFIRMATION_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
EMAIL_PATTERN = domain.EMAIL_PATTERN  # one address rule for all of Lethe


class Purpose(Model):
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
MARKETING: Final = "marketing_email"
POLICY_UPDATES: Final = "policy_updates"
CONTACT_PURPOSES = frozenset(p.name for p in PURPOSES.values() if p.contact)


class PurposeView(Model):
    granted: bool
    policy_version: str
    at: datetime
    source: str
    needs_reconsent: Annotated[bool, Field(description="Given under a version older than the latest published")]
    email: Annotated[
        Literal["confirmed", "unconfirmed"] | None,
        Field(description="Whether the address of a granted marketing_email / policy_updates is confirmed"),
    ] = None


class ConsentView(Model):
    subject_id: str
    purposes: dict[str, PurposeView]
    latest_policy_version: str | None
    needs_reconsent: Annotated[bool, Field(description="True if any purpose needs re-consent")]
    linked: Annotated[
        list[str], Field(default_factory=list, description="Device or account ids linked to this subject")
    ]


class RecordedConsent(ConsentView):
    device_secret: Annotated[
        str | None,
        Field(description="Only when the device id was just minted: keep it and send it as X-Lethe-Device-Secret"),
    ] = None
    email_confirmation: Annotated[
        Literal["pending", "confirmed"] | None,
        Field(description="pending: a confirmation link is emailed if the address may be sent one; nothing else is"),
    ] = None


class HistoryEntry(ConsentChange):
    """One change as the history shows it (the IP hash to operators only)."""


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


def _change(state: ConsentState, source: str, at: datetime, note: str | None, **fields: Any) -> ConsentChange:
    """The history row of a change to `state` made by `source` at `at`: the state's subject, purpose,
    choice and policy version unless `fields` name others (and the IP hash and browser family, if known)."""
    kept = state.model_dump(include={"subject_id", "purpose", "granted", "policy_version"})
    return ConsentChange.model_validate({**kept, "source": source, "at": at, "note": note, **fields})


def _digest(secret: str) -> str:
    # The secrets are 256 random bits: a plain SHA-256 cannot be reversed by guessing, and needs no key.
    return hashlib.sha256(secret.encode()).hexdigest()


def _mint_device(at: datetime) -> tuple[str, str]:
    device_id = f"{DEVICE_PREFIX}{secrets.token_hex(16)}"
    secret = secrets.token_urlsafe(32)
    ledger.save_device(device_id, _digest(secret), at)
    return device_id, secret


def is_minted_device(subject_id: str) -> bool:
    return ledger.device_secret_hash(subject_id) is not None


def authenticate_device(device_id: str, secret: str | None) -> None:
    """Unauthorized without a secret; Forbidden for a wrong one, or for an id Lethe never minted (an
    account id, a made-up id): the two answers are the same, so they say nothing about which ids exist."""
    if not secret:
        raise Unauthorized(f"send the device secret in {DEVICE_SECRET_HEADER}")
    stored = ledger.device_secret_hash(device_id)
    presented = _digest(secret)
    # Compared even when there is no stored hash, so the answer takes the same time.
    if not hmac.compare_digest(presented, stored or "0" * len(presented)) or stored is None:
        raise Forbidden("the device secret does not match this device id")


def _validate(purposes: dict[str, bool]) -> None:
    if not purposes:
        raise InvalidConsent("name at least one purpose")
    unknown = sorted(set(purposes) - set(PURPOSES))
    if unknown:
        raise InvalidConsent(f"unknown purpose(s): {', '.join(unknown)}; known: {', '.join(PURPOSES)}")
    refused = [name for name, granted in purposes.items() if not granted and not PURPOSES[name].refusable]
    if refused:
        raise InvalidConsent(f"{', '.join(refused)} cannot be refused: the service cannot work without it")


def _validate_choices(purposes: dict[str, bool], email: str | None) -> None:
    _validate(purposes)
    if email is not None and not any(purposes.get(name) for name in CONTACT_PURPOSES):
        raise InvalidConsent("an email is accepted only with a grant of marketing_email or policy_updates")


def claim_device(
    device_id: str | None, device_secret: str | None, purposes: dict[str, bool], email: str | None
) -> tuple[str, str | None]:
    """Who a public write is for: without a device id, a newly minted one (and its secret, returned
    once); with one, that device, if the secret is its own. Nothing is minted for invalid choices."""
    _validate_choices(purposes, email)
    if device_id is None:
        return _mint_device(datetime.now(UTC))
    authenticate_device(device_id, device_secret)
    return device_id, None


def _ip_hash(ring: KeyRing, subject_id: str, ip: str | None) -> str | None:
    return ring.mac("consent_ip", f"{subject_id}\x00{ip}")[:32] if ip else None


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
) -> RecordedConsent:
    """Record choices for a subject whose right to write them was already established (a device that
    proved its secret, or an account written by the admin API)."""
    _validate_choices(purposes, email)
    at = utc_now(now)
    choices = dict(purposes)
    notes: dict[str, str] = {}
    if gpc:
        choices[MARKETING] = False
        notes[MARKETING] = "gpc"

    ring = key_ring()
    known = ledger.current(subject_id)
    confirmed = next(((s.contact, s.contact_ref) for s in known if s.contact), (None, None))
    pending = next(((s.pending_contact, s.pending_contact_ref) for s in known if s.pending_contact), (None, None))
    status: Literal["pending", "confirmed"] | None = None
    if email is not None:
        address = normalize_email(email)
        if address == confirmed[0]:
            pending, status = (None, None), "confirmed"
        else:
            pending, status = (address, ring.subject_ref(address)), "pending"
    reachable = [name for name, granted in choices.items() if granted and name in CONTACT_PURPOSES]

    ip_hash = _ip_hash(ring, subject_id, ip)
    family = user_agent_family(user_agent)
    states, changes = [], []
    for name, granted in choices.items():
        reach = name in reachable
        state = ConsentState(
            subject_id=subject_id,
            purpose=name,
            granted=granted,
            policy_version=policy_version,
            source=source,
            at=at,
            note=notes.get(name),
            contact=confirmed[0] if reach else None,
            contact_ref=confirmed[1] if reach else None,
            pending_contact=pending[0] if reach else None,
            pending_contact_ref=pending[1] if reach else None,
        )
        states.append(state)
        changes.append(_change(state, source, at, notes.get(name), ip_hash=ip_hash, user_agent_family=family))
    ledger.write_changes(states, changes)
    if status == "pending" and reachable and pending[0] and pending[1]:
        _send_confirmation(subject_id, pending[0], pending[1], reachable, ring=ring, ip=ip, at=at)
    view = _view(subject_id, ledger.current(subject_id))
    return RecordedConsent(**view.model_dump(), email_confirmation=status if reachable else None)


def _may_send_confirmation(address: str, ref: str, ring: KeyRing, ip: str | None, at: datetime) -> bool:
    """Whether one more confirmation may go to this address: never to a suppressed one, and at most so
    many per hour per address and per source IP, so the form cannot be used to flood a stranger."""
    if is_suppressed(address):
        return False
    settings = get_settings()
    try:
        if ip:
            limit = settings.consent_confirmations_per_ip_per_hour
            ratelimit.hit("consent_confirm_ip", ring.hash_ip(ip), limit=limit, now=at)
        ratelimit.hit("consent_confirm_email", ref, limit=settings.consent_confirmations_per_email_per_hour, now=at)
    except RateLimited:
        return False
    return True


def confirmation_email(link: str, purposes: list[str], address: str) -> tuple[str, str, dict[str, str]]:
    """Subject, text and headers of the one email a pending address receives. It carries a one-click
    link that suppresses the address, so no one can have confirmations sent to it again."""
    from lethe.logic.unsubscribe import EVERYTHING, unsubscribe_link  # it imports this module

    stop = unsubscribe_link(address, EVERYTHING)
    wanted = " and ".join(PURPOSES[name].description.lower() for name in sorted(purposes))
    hours = get_settings().consent_confirmation_ttl_hours
    text = (
        f"Someone asked for this address to receive {wanted}.\n\n"
        f"If it was you, confirm here (the link works once, for {hours} hours):\n{link}\n\n"
        "If it was not you, ignore this email: nothing more will be sent to this address.\n"
        f"To never receive such a request again: {stop.url}\n"
    )
    return "Confirm your email address", text, stop.headers


def _send_confirmation(
    subject_id: str, address: str, ref: str, purposes: list[str], *, ring: KeyRing, ip: str | None, at: datetime
) -> None:
    if not _may_send_confirmation(address, ref, ring, ip, at):
        return
    settings = get_settings()
    token = secrets.token_urlsafe(32)
    expires_at = at + timedelta(hours=settings.consent_confirmation_ttl_hours)
    confirmation = Confirmation(subject_id=subject_id, contact_ref=ref, expires_at=expires_at)
    ledger.save_confirmation(_digest(token), confirmation, at)
    link = f"{settings.public_base_url.rstrip('/')}/subscriptions/confirm?token={token}"
    subject, text, headers = confirmation_email(link, purposes, address)
    send_email(address, subject, text, headers=headers)


def _open_confirmation(token: str, at: datetime) -> Confirmation:
    if not CONFIRMATION_TOKEN.fullmatch(token):
        raise InvalidToken("this confirmation link is not valid")
    found = ledger.find_confirmation(_digest(token))
    if found is None:
        raise InvalidToken("this confirmation link is not valid, or was already used")
    if found.expires_at <= at:
        raise ConfirmationExpired("this confirmation link has expired")
    return found


def check_confirmation(token: str, *, now: datetime | None = None) -> None:
    """Verify a confirmation link without using it (the GET page, which link scanners also fetch)."""
    _open_confirmation(token, utc_now(now))


def confirm_email(token: str, *, now: datetime | None = None) -> int:
    """Follow a confirmation link: the pending address becomes the contact of every granted purpose
    still waiting for it, on the device and on the account it was linked to. One-time: the link is used
    up first. Returns how many purposes it confirmed."""
    at = utc_now(now)
    found = _open_confirmation(token, at)
    if not ledger.use_confirmation(_digest(token)):
        raise InvalidToken("this confirmation link is not valid, or was already used")
    # A device linked to an account since the email went out passed its pending address on to it.
    accounts = [link.linked_id for link in ledger.links(found.subject_id) if link.role == "device"]
    confirmed = 0
    for state in [s for subject_id in (found.subject_id, *accounts) for s in ledger.current(subject_id)]:
        if not state.granted or state.pending_contact_ref != found.contact_ref:
            continue
        change = _change(state, "email_confirmation", at, "email confirmed", granted=True)
        confirmed += ledger.confirm_contact(state, change)
    return confirmed


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
            email="confirmed" if s.contact else "unconfirmed" if s.pending_contact else None,
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


def get_history(subject_id: str, *, operator: bool = False) -> list[HistoryEntry]:
    """Every change, oldest first. An account's history also holds the history of the guest devices
    linked to it (each entry names its subject_id), so the account's state can be traced to its source.
    The IP hash is shown to operators only."""
    changes = ledger.history(subject_id)
    if not changes:
        raise ConsentNotFound("no consent is recorded for this subject")
    for link in ledger.links(subject_id):
        if link.role == "account":
            changes += ledger.history(link.linked_id)
    changes.sort(key=lambda c: c.at)  # stable: rows written together keep their order
    return [HistoryEntry(**c.model_dump(exclude=set() if operator else {"ip_hash"})) for c in changes]


def link_device(device_id: str, account_id: str, *, source: str = "signup", now: datetime | None = None) -> ConsentView:
    """Join a guest device's choices to an account: per purpose, the most recent choice wins. Called
    by the service that authenticated the account (admin API); the device must be one Lethe minted."""
    if device_id == account_id:
        raise InvalidConsent("a subject cannot be linked to itself")
    if not is_minted_device(device_id):
        raise InvalidConsent("only a device id minted by Lethe can be linked to an account")
    if is_minted_device(account_id):
        raise InvalidConsent("a device cannot be linked to another device; name the account id")
    device_states = ledger.current(device_id)
    if not device_states:
        raise ConsentNotFound("no consent is recorded for this device")
    at = utc_now(now)
    if not ledger.save_link(device_id, account_id, at):
        return get_consent(account_id)  # already linked: linking again changes nothing
    account_now = {s.purpose: s for s in ledger.current(account_id)}
    adopted = [d for d in device_states if d.purpose not in account_now or d.at > account_now[d.purpose].at]
    states = [
        s.model_copy(update={"subject_id": account_id, "at": at, "source": source, "note": f"linked from {device_id}"})
        for s in adopted
    ]
    changes = [_change(s, source, at, f"linked from {device_id}", subject_id=account_id) for s in adopted]
    changes += [_change(s, source, at, f"linked to {account_id}") for s in device_states]
    if not adopted:  # the account's choices are all newer: its history still shows the link
        kept = next(iter(account_now.values()), None)
        if kept is not None:
            changes.append(_change(kept, source, at, f"linked from {device_id}"))
    ledger.write_changes(states, changes)
    return get_consent(account_id)


def _withdraw_subject(state: ConsentState, source: str, at: datetime) -> None:
    note = f"withdrawn: {source}"
    cleared = {"contact": None, "contact_ref": None, "pending_contact": None, "pending_contact_ref": None}
    ledger.write_changes(
        [state.model_copy(update={"granted": False, "at": at, "source": source, "note": note, **cleared})],
        [_change(state, source, at, note, granted=False)],
    )


def _is_address_of(address: str | None, ref: str, ring: KeyRing) -> bool:
    """Whether `ref` (a subject reference under any key id in the ring) is the reference of `address`."""
    kid = ref.partition(":")[0]
    return bool(address) and kid in ring.keys and hmac.compare_digest(ring.subject_ref(address or "", kid), ref)


def withdraw_by_ref(purpose: str, ref: str, source: str) -> int:
    """Withdraw `purpose` for every subject reachable at the address `ref` refers to, and forget that
    address where it was still waiting for confirmation. Idempotent. Returns the subjects withdrawn."""
    ring = key_ring()
    at = datetime.now(UTC)
    withdrawn = 0
    for state in list(ledger.granted_to(purpose)):
        if _is_address_of(state.contact, ref, ring):
            _withdraw_subject(state, source, at)
            withdrawn += 1
        elif _is_address_of(state.pending_contact, ref, ring):
            ledger.write_changes([state.model_copy(update={"pending_contact": None, "pending_contact_ref": None})], [])
    return withdrawn


def withdraw_marketing(email: str, source: str) -> None:
    """Withdraw marketing for an address: suppress it, and refuse marketing_email for every subject of
    the ledger reachable at that address. Idempotent. Called by verified objection, marketing_opt_out
    and consent_withdrawal requests."""
    ref = suppress(email, reason="marketing_opt_out", source=source)
    withdrawn = withdraw_by_ref(MARKETING, ref, source)
    audit.append("marketing_withdrawn", subject_ref=ref, details={"source": source, "subjects": withdrawn})


def erase_contacts(email: str, source: str) -> int:
    """An erasure: every current row that can reach this address forgets it (withdrawn, address and
    reference removed, a history row saying so), and a row still waiting to confirm it forgets it too.
    Idempotent. Returns how many rows could reach it."""
    at = datetime.now(UTC)
    states = ledger.contacts_for(key_ring().subject_refs(email))
    for state in states:
        _withdraw_subject(state, source, at)
    # A pending address is not on the contact index; forget it as an unsubscribe does.
    ref = key_ring().subject_ref(email)
    for purpose in sorted(CONTACT_PURPOSES):
        withdraw_by_ref(purpose, ref, source)
    return len(states)

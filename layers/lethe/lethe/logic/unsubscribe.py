"""Signed one-click unsubscribe (RFC 8058), for marketing email and for policy-change notices.

A token is `<list>.<key id>.<subject HMAC>.<signature>`: `m` (marketing_email), `p` (policy_updates) or
`a` (everything: what a confirmation email offers to someone who never asked for it),
the key id, the keyed HMAC of the normalized address under that key (the reference the suppression list
and the audit know it by; never the address itself), and an HMAC over the three. Tokens issued before a
key rotation still verify while their key stays in the ring. The whole token must match its exact form,
so an altered, padded or re-encoded variant is refused.
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated, Final, Literal
from urllib.parse import quote

from pydantic import Field

from lethe.data import audit
from lethe.domain import Model
from lethe.errors import InvalidToken
from lethe.keys import key_ring, normalize_email
from lethe.logic.consent import MARKETING, POLICY_UPDATES, withdraw_by_ref
from lethe.logic.suppression import suppress_ref
from lethe.settings import get_settings

MAC_PURPOSE = "unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"
EVERYTHING: Final = "all"
LISTS: dict[str, str] = {"m": MARKETING, "p": POLICY_UPDATES, "a": EVERYTHING}
_CODES = {purpose: code for code, purpose in LISTS.items()}
TOKEN = re.compile(r"(?P<list>[mpa])\.(?P<kid>[A-Za-z0-9_-]{1,32})\.(?P<ref>[0-9a-f]{64})\.(?P<mac>[0-9a-f]{64})")
Unsubscribable = Literal["marketing_email", "policy_updates", "all"]


class UnsubscribeLink(Model):
    url: Annotated[str, Field(description="The signed unsubscribe URL (GET shows a page, POST unsubscribes)")]
    headers: Annotated[
        dict[str, str], Field(description="List-Unsubscribe and List-Unsubscribe-Post, to put on the email")
    ]


class Unsubscribed(Model):
    purpose: str
    subject_ref: str


def make_token(email: str, purpose: Unsubscribable = "marketing_email", key_id: str | None = None) -> str:
    ring = key_ring()
    kid = key_id or ring.current
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", kid):
        raise InvalidToken("the current key id cannot be carried in an unsubscribe token")
    code = _CODES[purpose]
    ref = ring.subject_ref(normalize_email(email), kid).partition(":")[2]
    return f"{code}.{kid}.{ref}.{ring.mac(MAC_PURPOSE, f'{code}.{ref}', kid)}"


def read_token(token: str) -> Unsubscribed:
    """The list and address reference a token was issued for; InvalidToken if malformed, forged or altered."""
    found = TOKEN.fullmatch(token or "")
    ring = key_ring()
    if found is None or found["kid"] not in ring.keys:
        raise InvalidToken("this unsubscribe link is not valid")
    expected = ring.mac(MAC_PURPOSE, f"{found['list']}.{found['ref']}", found["kid"])
    if not hmac.compare_digest(expected, found["mac"]):
        raise InvalidToken("this unsubscribe link is not valid")
    return Unsubscribed(purpose=LISTS[found["list"]], subject_ref=f"{found['kid']}:{found['ref']}")


def unsubscribe_link(email: str, purpose: Unsubscribable = "marketing_email") -> UnsubscribeLink:
    settings = get_settings()
    url = f"{settings.public_base_url.rstrip('/')}/unsubscribe?token={quote(make_token(email, purpose), safe='')}"
    mailto = f"mailto:{settings.sender_email}?subject=unsubscribe"
    return UnsubscribeLink(
        url=url,
        headers={"List-Unsubscribe": f"<{url}>, <{mailto}>", "List-Unsubscribe-Post": ONE_CLICK},
    )


def check(token: str) -> str:
    """Verify a token without acting on it (the GET confirmation page). Returns the purpose it stops."""
    return read_token(token).purpose


def unsubscribe(token: str) -> str:
    """One click. Marketing: suppress the address and withdraw marketing_email in the ledger. Policy
    notices: withdraw policy_updates. Everything: both, and the suppression also stops confirmation
    emails. Idempotent. Returns what was stopped."""
    found = read_token(token)
    source = "one_click_unsubscribe"
    if found.purpose in (MARKETING, EVERYTHING):
        suppress_ref(found.subject_ref, reason="marketing_opt_out", source=source)
    purposes = [MARKETING, POLICY_UPDATES] if found.purpose == EVERYTHING else [found.purpose]
    for purpose in purposes:
        withdrawn = withdraw_by_ref(purpose, found.subject_ref, source)
        action = "marketing_withdrawn" if purpose == MARKETING else "policy_updates_withdrawn"
        audit.append(action, subject_ref=found.subject_ref, details={"source": source, "subjects": withdrawn})
    return found.purpose

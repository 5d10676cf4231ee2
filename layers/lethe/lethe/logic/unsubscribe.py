"""Signed one-click unsubscribe (RFC 8058).

A token is `<base64url(normalized email)>.<key id>.<HMAC>`: the HMAC is taken over the normalized
address under the named key id, so tokens issued before a key rotation still verify while their key
stays in the ring. A token whose address, key id or HMAC was altered is refused.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated
from urllib.parse import quote

from pydantic import BaseModel, Field

from lethe.errors import InvalidToken
from lethe.keys import key_ring, normalize_email
from lethe.logic.consent import withdraw_marketing
from lethe.settings import get_settings

MAC_PURPOSE = "unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"


class UnsubscribeLink(BaseModel):
    url: Annotated[str, Field(description="The signed unsubscribe URL (GET shows a page, POST unsubscribes)")]
    headers: Annotated[
        dict[str, str], Field(description="List-Unsubscribe and List-Unsubscribe-Post, to put on the marketing email")
    ]


def _b64encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _b64decode(value: str) -> str:
    padded = value + "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()


def make_token(email: str, key_id: str | None = None) -> str:
    ring = key_ring()
    kid = key_id or ring.current
    address = normalize_email(email)
    return f"{_b64encode(address)}.{kid}.{ring.mac(MAC_PURPOSE, address, kid)}"


def read_token(token: str) -> str:
    """The address a token was issued for; InvalidToken if it is malformed, forged or altered."""
    encoded, _, rest = token.partition(".")
    kid, _, mac = rest.rpartition(".")
    ring = key_ring()
    if not encoded or not kid or not mac or kid not in ring.keys:
        raise InvalidToken("this unsubscribe link is not valid")
    try:
        address = _b64decode(encoded)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken("this unsubscribe link is not valid") from exc
    if address != normalize_email(address) or not hmac.compare_digest(ring.mac(MAC_PURPOSE, address, kid), mac):
        raise InvalidToken("this unsubscribe link is not valid")
    return address


def unsubscribe_link(email: str) -> UnsubscribeLink:
    settings = get_settings()
    url = f"{settings.public_base_url.rstrip('/')}/unsubscribe?token={quote(make_token(email), safe='')}"
    mailto = f"mailto:{settings.sender_email}?subject=unsubscribe"
    return UnsubscribeLink(
        url=url,
        headers={"List-Unsubscribe": f"<{url}>, <{mailto}>", "List-Unsubscribe-Post": ONE_CLICK},
    )


def check(token: str) -> None:
    """Verify a token without acting on it (the GET confirmation page)."""
    read_token(token)


def unsubscribe(token: str) -> None:
    """One click: suppress the address and withdraw marketing in the ledger. Idempotent."""
    address = read_token(token)
    withdraw_marketing(address, source="one_click_unsubscribe")

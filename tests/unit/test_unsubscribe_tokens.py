"""Unsubscribe tokens: no address inside, signed per key id (so keys rotate), any alteration refused."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from lethe.errors import InvalidToken
from lethe.keys import KeyRing
from lethe.logic import unsubscribe

OLD = KeyRing(current="k1", keys={"k1": b"a" * 32})
ROTATED = KeyRing(current="k2", keys={"k1": b"a" * 32, "k2": b"b" * 32})


@pytest.fixture
def ring(monkeypatch: pytest.MonkeyPatch) -> KeyRing:
    monkeypatch.setattr(unsubscribe, "key_ring", lambda: ROTATED)
    return ROTATED


def test_a_token_names_its_list_and_key_and_reads_back_the_address_reference(ring: KeyRing) -> None:
    token = unsubscribe.make_token("  Grace.Hopper@Example.COM ")
    code, kid, ref, mac = token.split(".")
    assert (code, kid, len(ref), len(mac)) == ("m", "k2", 64, 64)
    found = unsubscribe.read_token(token)
    assert found.purpose == "marketing_email"
    assert found.subject_ref == ring.subject_ref("grace.hopper@example.com")


def test_a_token_holds_no_address_in_any_encoding(ring: KeyRing) -> None:
    address = "grace.hopper@example.com"
    token = unsubscribe.make_token(address, "policy_updates")
    encoded = base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")
    assert "grace" not in token and encoded[:6] not in token and address.encode().hex()[:12] not in token


def test_a_token_issued_before_a_rotation_still_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unsubscribe, "key_ring", lambda: OLD)
    token = unsubscribe.make_token("old@example.com")
    monkeypatch.setattr(unsubscribe, "key_ring", lambda: ROTATED)
    assert unsubscribe.read_token(token).subject_ref == OLD.subject_ref("old@example.com")


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), id="mac-flipped"),
        pytest.param(lambda t: t.replace(".k2.", ".k1."), id="other-key-id"),
        pytest.param(lambda t: t.replace(".k2.", ".k9."), id="unknown-key-id"),
        pytest.param(lambda t: "p" + t[1:], id="other-list"),
        pytest.param(lambda t: t + "=", id="padded"),
        pytest.param(lambda t: t + "%3D", id="padded-quoted"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t.upper(), id="upper-hex"),
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="truncated"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_an_altered_token_is_refused(ring: KeyRing, alter: object) -> None:
    token = unsubscribe.make_token("grace@example.com")
    with pytest.raises(InvalidToken):
        unsubscribe.read_token(alter(token))  # type: ignore[operator]


def test_the_link_carries_rfc_8058_headers(ring: KeyRing) -> None:
    link = unsubscribe.unsubscribe_link("grace@example.com")
    parsed = urllib.parse.urlparse(link.url)
    assert parsed.path == "/unsubscribe"
    token = urllib.parse.parse_qs(parsed.query)["token"][0]
    assert unsubscribe.read_token(token).subject_ref == ring.subject_ref("grace@example.com")
    assert link.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    first, second = (part.strip() for part in link.headers["List-Unsubscribe"].split(","))
    assert first == f"<{link.url}>" and second.startswith("<mailto:")
    assert "grace" not in link.headers["List-Unsubscribe"]

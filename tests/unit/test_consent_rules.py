"""Consent rules that need no storage: purposes, refusals, user agent families, GPC-free validation."""

from __future__ import annotations

import pytest

from lethe.errors import InvalidConsent
from lethe.logic import consent
from lethe.logic.consent import PURPOSES, user_agent_family


def test_the_configured_purposes_are_the_five_the_policy_names() -> None:
    assert set(PURPOSES) == {"strictly_necessary", "performance", "functionality", "marketing_email", "policy_updates"}
    assert PURPOSES["strictly_necessary"].refusable is False
    assert all(p.refusable for name, p in PURPOSES.items() if name != "strictly_necessary")
    assert all(p.description for p in PURPOSES.values())
    assert {"marketing_email", "policy_updates"} == consent.CONTACT_PURPOSES


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537",
            "Chrome",
        ),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.2 Mobile/15E148 Safari/604.1",
            "Safari",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0",
            "Edge",
        ),
        ("curl/8.5.0", "curl"),
        ("python-requests/2.32", "other"),
        ("", None),
        (None, None),
    ],
)
def test_user_agents_are_reduced_to_a_family(agent: str | None, family: str | None) -> None:
    assert user_agent_family(agent) == family


def test_refusing_strictly_necessary_is_invalid() -> None:
    with pytest.raises(InvalidConsent, match="strictly_necessary"):
        consent._validate({"strictly_necessary": False, "performance": True})


def test_an_unknown_purpose_is_invalid_and_named() -> None:
    with pytest.raises(InvalidConsent, match="ad_tracking"):
        consent._validate({"ad_tracking": True})


def test_no_purposes_is_invalid() -> None:
    with pytest.raises(InvalidConsent):
        consent._validate({})


def test_accepting_strictly_necessary_and_refusing_the_rest_is_valid() -> None:
    consent._validate({"strictly_necessary": True, "performance": False, "marketing_email": False})

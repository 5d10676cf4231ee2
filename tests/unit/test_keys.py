from __future__ import annotations

import json

import pytest

from lethe.errors import ConfigurationError
from lethe.keys import KeyRing, normalize_email

SECRET = json.dumps({"current": "k1", "k1": "a" * 48})


def test_subject_refs_are_keyed_hashes_of_the_normalized_email() -> None:
    ring = KeyRing.from_secret(SECRET)
    ref = ring.subject_ref("  Ada@Example.COM ")
    assert ref == ring.subject_ref("ada@example.com")
    assert ref.startswith("k1:") and "@" not in ref and "example" not in ref
    assert ref != KeyRing.from_secret(json.dumps({"current": "k1", "k1": "b" * 48})).subject_ref("ada@example.com")


def test_a_rotated_ring_still_finds_references_made_under_the_old_key() -> None:
    old = KeyRing.from_secret(SECRET)
    rotated = KeyRing.from_secret(json.dumps({"current": "k2", "k1": "a" * 48, "k2": "c" * 48}))
    assert old.subject_ref("ada@example.com") in rotated.subject_refs("ada@example.com")
    assert rotated.subject_ref("ada@example.com").startswith("k2:")


@pytest.mark.parametrize(
    "secret", ["not json", json.dumps({"k1": "a" * 48}), json.dumps({"current": "k1", "k1": "short"})]
)
def test_an_unusable_secret_is_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing.from_secret(secret)


def test_normalize_email() -> None:
    assert normalize_email(" Grace@Example.org\n") == "grace@example.org"

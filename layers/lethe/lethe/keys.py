"""Keyed hashes: subject references and signed tokens. (Pseudonyms are never made under these
long-lived keys: see lethe.data.masking.)

The keys live in one Secrets Manager secret: {"current": "<key id>", "<key id>": "<key>", ...}.
A new key id can be added and made current; older ids still verify (rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from lethe.errors import ConfigurationError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class KeyRing:
    current: str
    keys: dict[str, bytes]

    @classmethod
    def from_secret(cls, secret: str) -> KeyRing:
        try:
            data = json.loads(secret)
            current = data.pop("current")
            keys = {kid: value.encode() for kid, value in data.items() if isinstance(value, str)}
        except (ValueError, KeyError, AttributeError) as exc:
            raise ConfigurationError("the subject key secret must be JSON with 'current' and key ids") from exc
        if current not in keys or len(keys[current]) < 32:
            raise ConfigurationError("the subject key secret's current key is missing or shorter than 32 bytes")
        return cls(current=current, keys=keys)

    def mac(self, purpose: str, value: str, key_id: str | None = None) -> str:
        key = self.keys[key_id or self.current]
        return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def subject_ref(self, email: str, key_id: str | None = None) -> str:
        """The only way a subject appears in the audit and the suppression list."""
        kid = key_id or self.current
        return f"{kid}:{self.mac('subject', normalize_email(email), kid)}"

    def subject_refs(self, email: str) -> list[str]:
        """The reference under every key id, for look-ups that must survive a rotation."""
        return [self.subject_ref(email, kid) for kid in self.keys]

    def hash_ip(self, ip: str) -> str:
        return self.mac("ip", ip)[:32]


@lru_cache(maxsize=4)
def _ring_from(secret: str) -> KeyRing:
    return KeyRing.from_secret(secret)


@cache
def _secrets() -> SecretsProvider:
    # Through Lethe's one botocore session: Powertools' default provider would build a session of its own.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from lethe.aws import client

    return SecretsProvider(boto3_client=client("secretsmanager"))


def key_ring() -> KeyRing:
    """The key ring, fetched through Powertools Parameters (cached for five minutes, so a rotation
    reaches warm functions without a redeploy)."""
    from lethe.settings import get_settings

    secret = _secrets().get(get_settings().subject_key_secret, max_age=300)
    return _ring_from(str(secret))


def reset_key_ring() -> None:
    _secrets.cache_clear()
    _ring_from.cache_clear()

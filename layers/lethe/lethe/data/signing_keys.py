"""The processor's signing key, held in KMS (an asymmetric SIGN_VERIFY key): the private key never
leaves it, Lethe only asks it to sign."""

from __future__ import annotations

from lethe.aws import client


def sign(key_id: str, message: bytes, *, message_type: str, algorithm: str) -> bytes:
    """KMS's signature of `message` (the bytes themselves when RAW, up to 4 KiB; their digest when DIGEST)."""
    signed = client("kms").sign(KeyId=key_id, Message=message, MessageType=message_type, SigningAlgorithm=algorithm)
    return bytes(signed["Signature"])

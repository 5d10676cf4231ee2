"""The processor's signature (OpenDSR): every OpenDSR response and status callback carries
`X-OpenDSR-Processor-Domain` and `X-OpenDSR-Signature`, the base64 of an RSA PKCS#1 v1.5 signature of
the SHA-256 digest of the raw body, by the processor key. The private key never leaves KMS (an
asymmetric SIGN_VERIFY key in AWS and on the local stack's moto). Receivers verify with the public key
of the certificate served at `processor_certificate`.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from lethe.data import signing_keys
from lethe.errors import ConfigurationError
from lethe.settings import get_settings

SIGNING_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"
RAW_LIMIT = 4096
DOMAIN_HEADER = "X-OpenDSR-Processor-Domain"
SIGNATURE_HEADER = "X-OpenDSR-Signature"
# The names OpenDSR's predecessor used; receivers written for it still find them (spec: "Migration").
LEGACY_DOMAIN_HEADER = "X-OpenGDPR-Processor-Domain"
LEGACY_SIGNATURE_HEADER = "X-OpenGDPR-Signature"


def processor_domain() -> str:
    """The domain the certificate is issued to: the configured one, else the public base URL's host."""
    settings = get_settings()
    return settings.processor_domain or (urlsplit(settings.public_base_url).hostname or "localhost")


def sign(body: bytes) -> str:
    """Base64 of the processor key's signature over `body` (SHA-256). Raises ConfigurationError when
    no processor key is configured: an unsigned OpenDSR answer would be worthless to a controller."""
    key_id = get_settings().processor_key_id
    if not key_id:
        raise ConfigurationError("no processor signing key is configured (LETHE_PROCESSOR_KEY_ID)")
    # KMS hashes a RAW message itself (up to 4 KiB); a longer body is hashed here and sent as its digest.
    # Both give the same signature: PKCS#1 v1.5 over SHA-256 of the body.
    if len(body) <= RAW_LIMIT:
        message, message_type = body, "RAW"
    else:
        message, message_type = hashlib.sha256(body).digest(), "DIGEST"
    signature = signing_keys.sign(key_id, message, message_type=message_type, algorithm=SIGNING_ALGORITHM)
    return base64.b64encode(signature).decode("ascii")


def signature_headers(body: bytes) -> dict[str, str]:
    """Both header pairs (OpenDSR and the OpenGDPR names) for a body."""
    signature, domain = sign(body), processor_domain()
    return {
        DOMAIN_HEADER: domain,
        SIGNATURE_HEADER: signature,
        LEGACY_DOMAIN_HEADER: domain,
        LEGACY_SIGNATURE_HEADER: signature,
    }


def certificate_pem() -> str:
    """The processor certificate (PEM): operator-provided in AWS, made for the KMS key by the local stack."""
    pem = get_settings().processor_certificate.strip()
    if not pem:
        raise ConfigurationError("no processor certificate is configured (LETHE_PROCESSOR_CERTIFICATE)")
    return pem + "\n"

"""The local stack's OpenDSR processor certificate: an X.509 certificate for the public key of the
processor signing key (a KMS key on moto), so that a controller verifies signatures exactly as it would
against a deployed Lethe. In AWS the operator provides a CA-issued certificate (ProcessorCertificate);
locally the issuer is a throwaway key made at start-up (the private signing key stays in KMS, and a
certificate cannot be signed by KMS through `cryptography`). For development only: never trusted."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def local_certificate(kms: Any, key_id: str, domain: str = "127.0.0.1") -> str:
    """A PEM certificate whose subject key is the KMS key's public key, valid for a year."""
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lethe local development CA (untrusted)")])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(domain)))
    except ValueError:
        names.append(x509.DNSName(domain))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

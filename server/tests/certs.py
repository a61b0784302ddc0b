"""Certificates the tests craft themselves, byte for byte, to attack the identity rules.

tools/devcerts.py (the openssl CLI) cannot write a NUL into a SAN; `cryptography` can, and also
leaves out extensions or picks the key type at will. Every certificate is signed by a CA of the
session PKI, so the handshake accepts it and only replicant's own checks stand in the way.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

CLIENT_AUTH = (ExtendedKeyUsageOID.CLIENT_AUTH,)
SERVER_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH,)


def issue(
    pki: Path,
    out: Path,
    name: str,
    *,
    ca: str = "client-ca",
    cn: str = "crafted",
    uris: Sequence[str] = (),
    dns: Sequence[str] = (),
    usages: Sequence[x509.ObjectIdentifier] | None = CLIENT_AUTH,
    rsa_key: bool = False,
    is_ca: bool = False,
) -> None:
    """Write out/<name>.crt and .key, signed by pki/<ca>.crt; usages=None leaves out the EKU;
    is_ca makes it a CA (basicConstraints CA:TRUE) that can sign further certificates."""
    ca_key = serialization.load_pem_private_key((pki / f"{ca}.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((pki / f"{ca}.crt").read_bytes())
    key: CertificateIssuerPrivateKeyTypes
    if rsa_key:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    # Without validation: cryptography refuses non-ASCII DNS names, which is what is tested.
    names += [x509.DNSName._init_without_validation(d) for d in dns]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    cert = builder.sign(ca_key, hashes.SHA256())
    (out / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

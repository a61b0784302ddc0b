"""Every certificate the project makes for itself, made with `cryptography`.

One module for the dev PKI of replicant's mutual TLS (`make certs`), the local control plane's
PKI (tools/cluster) and the tests, which craft certificates byte for byte to attack the identity
rules (a NUL in a SAN, no extended key usage, an RSA key). `cryptography` is already a runtime
dependency, so no other tool is needed. `make certs` writes into a git-ignored folder:

    ca.crt ca.key                 the server CA: clients verify the server with ca.crt
    client-ca.crt client-ca.key   the client CA: the server trusts only it, so nothing the server
                                  CA signs (the server's own certificate included) is a client
    server.crt server.key         SANs: localhost, 127.0.0.1, replicant, replicant.<ns>.svc[...]
    reader.crt writer.crt nobody.crt (+ .key)   URI SAN spiffe://replicant.dev/client/<name>
    untrusted-ca.crt untrusted.crt untrusted.key   a "writer" signed by a CA nobody trusts

Keys are ECDSA P-256; dev certificates last 30 days. Existing files are kept unless --force.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

READER_ID = "spiffe://replicant.dev/client/reader"
WRITER_ID = "spiffe://replicant.dev/client/writer"
NOBODY_ID = "spiffe://replicant.dev/client/nobody"
DEV_DAYS = 30
DEFAULT_NAMESPACES = ("default", "replicant", "replicant-system")
CLIENT_AUTH = (ExtendedKeyUsageOID.CLIENT_AUTH,)
SERVER_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH,)


def _name(cn: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_key(path: Path, key: CertificateIssuerPrivateKeyTypes) -> None:
    """PKCS#8 PEM, readable by its owner only."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write(
    out: Path, name: str, cert: x509.Certificate, key: CertificateIssuerPrivateKeyTypes
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_key(out / f"{name}.key", key)


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=days)
    )


def make_ca(out: Path, name: str, cn: str, *, days: int = DEV_DAYS) -> None:
    """Write out/<name>.crt and .key: a self-signed CA that signs only certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,  # keyCertSign and cRLSign only
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    _write(out, name, _validity(builder, days).sign(key, hashes.SHA256()), key)


def issue(
    pki: Path,
    out: Path,
    name: str,
    *,
    ca: str = "client-ca",
    cn: str = "crafted",
    organizations: Sequence[str] = (),
    uris: Sequence[str] = (),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    usages: Sequence[x509.ObjectIdentifier] | None = CLIENT_AUTH,
    rsa_key: bool = False,
    days: int = 1,
    is_ca: bool = False,
) -> None:
    """Write out/<name>.crt and .key, signed by pki/<ca>.crt; usages=None leaves out the EKU;
    is_ca makes a CA (basicConstraints CA:TRUE) that can sign further certificates."""
    ca_key = serialization.load_pem_private_key((pki / f"{ca}.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((pki / f"{ca}.crt").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key: CertificateIssuerPrivateKeyTypes
    if rsa_key:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, rsa_key, False, False, is_ca, False, False, False),
            critical=True,  # digitalSignature (+ keyEncipherment for RSA, keyCertSign for a CA)
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    # Without validation: cryptography refuses non-ASCII DNS names, which tests try.
    names += [x509.DNSName._init_without_validation(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    _write(out, name, _validity(builder, days).sign(ca_key, hashes.SHA256()), key)


def server_dns_names(namespaces: Sequence[str]) -> list[str]:
    names = ["localhost", "replicant"]
    for ns in namespaces:
        names += [f"replicant.{ns}.svc", f"replicant.{ns}.svc.cluster.local"]
    return names


def generate(out: Path, namespaces: Sequence[str] = DEFAULT_NAMESPACES) -> None:
    """The dev PKI (see the module docstring), overwriting what is there."""
    make_ca(out, "ca", "replicant dev CA")
    make_ca(out, "client-ca", "replicant dev client CA")
    make_ca(out, "untrusted-ca", "somebody else's CA")

    def leaf(name: str, cn: str, **options: Any) -> None:
        issue(out, out, name, cn=cn, organizations=["replicant-dev"], days=DEV_DAYS, **options)

    sans = {"dns": server_dns_names(namespaces), "ips": ["127.0.0.1"]}
    leaf("server", "replicant", ca="ca", usages=SERVER_AUTH, **sans)
    # CN deliberately differs from the identity: replicant reads SANs only.
    leaf("reader", "reader", uris=[READER_ID])
    leaf("writer", "writer", uris=[WRITER_ID])
    leaf("nobody", "nobody", uris=[NOBODY_ID])
    leaf("untrusted", "writer", ca="untrusted-ca", uris=[WRITER_ID])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devcerts", description=__doc__)
    parser.add_argument("--out", default="certs", help="output folder (default: certs)")
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    parser.add_argument(
        "--namespace",
        action="append",
        help="namespace for replicant.<ns>.svc SANs (repeatable; default: %(default)s)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if (out / "untrusted.crt").exists() and not args.force:
        print(f"dev certificates already in {out}/ (use --force to regenerate)")
        return 0
    generate(out, tuple(args.namespace or DEFAULT_NAMESPACES))
    print(f"dev certificates written to {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Caller identity (requirement: mTLS authentication), read from the verified client certificate.

Not gRPC's `peer_uri`/`peer_dns`: gRPC core builds them from C strings, so a URI SAN
`spiffe://x/writer\\x00.evil` reads there as `spiffe://x/writer`. The leaf's PEM (`x509_pem_cert`)
is parsed with `cryptography`, and refused (UNAUTHENTICATED) on each rule of docs/design.md
("Identity"); the identity is the first URI SAN, else the first DNS SAN. Results are cached per
certificate and client CA set, so a busy client costs one parse, not one per call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from server.errors import IdentityRefusedError

AuthContext = Mapping[str, Iterable[bytes]]
Extension = TypeVar("Extension", bound=x509.ExtensionType)

CACHED_CERTIFICATES: Final = 1024


@dataclass(frozen=True)
class Refusal:
    reason: str  # a metric label: no_client_auth, bad_character, san_mismatch, ...
    message: str  # shown to the caller


class IdentityReader:
    """Turns a verified peer into an identity, or refuses it with a reason."""

    def __init__(self, client_cas: Callable[[], tuple[x509.Certificate, ...]]) -> None:
        self._client_cas = client_cas
        self._read = functools.lru_cache(maxsize=CACHED_CERTIFICATES)(self._read_uncached)

    def identity(self, auth_context: AuthContext) -> str:
        """The caller's identity; raises IdentityRefusedError."""
        pems = list(auth_context.get("x509_pem_cert", ()))
        if len(pems) != 1:
            raise IdentityRefusedError("no_certificate", "no client certificate")
        grpc_sans = (
            tuple(auth_context.get("peer_uri", ())),
            tuple(auth_context.get("peer_dns", ())),
        )
        result = self._read(pems[0], grpc_sans, self._client_cas())
        if isinstance(result, Refusal):
            # A fresh exception per call: re-raising a cached one would grow its traceback.
            raise IdentityRefusedError(result.reason, result.message)
        return result

    def _read_uncached(
        self,
        pem: bytes,
        grpc_sans: tuple[tuple[bytes, ...], tuple[bytes, ...]],
        client_cas: tuple[x509.Certificate, ...],
    ) -> str | Refusal:
        try:  # cryptography parses extensions when first read: a malformed one raises here
            cert = x509.load_pem_x509_certificate(pem)
            sans = _extension(cert, x509.SubjectAlternativeName)
            constraints = _extension(cert, x509.BasicConstraints)
            usages = _extension(cert, x509.ExtendedKeyUsage)
        except ValueError:
            return Refusal("unparsable", "client certificate cannot be parsed")
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier) if sans else []
        dns = sans.get_values_for_type(x509.DNSName) if sans else []
        if constraints and constraints.ca:
            return Refusal("not_leaf", "client certificate is a CA certificate")
        # No intermediates: to trust an intermediate's leaves, list it itself as a client CA.
        if not any(_issued_by(cert, ca) for ca in client_cas):
            return Refusal("intermediate", "client certificate is not issued by a client CA")
        # BoringSSL accepts a leaf with no EKU at the handshake.
        if not (usages and ExtendedKeyUsageOID.CLIENT_AUTH in usages):
            return Refusal(
                "no_client_auth", "client certificate lacks the clientAuth extended key usage"
            )
        if not all(map(_printable, (*uris, *dns))):
            return Refusal(
                "bad_character", "client certificate SAN holds a control or non-ASCII character"
            )
        if grpc_sans != (_encoded(uris), _encoded(dns)):
            return Refusal("san_mismatch", "client certificate SANs are ambiguous")
        names = uris or dns
        if not names:
            return Refusal("no_san", "client certificate has no URI or DNS SAN")
        return names[0]


def _extension(cert: x509.Certificate, kind: type[Extension]) -> Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _printable(name: str) -> bool:
    return bool(name) and all("!" <= ch <= "~" for ch in name)


def _encoded(names: list[str]) -> tuple[bytes, ...]:
    return tuple(name.encode("ascii") for name in names)

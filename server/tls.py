"""Server-side mutual TLS (requirement: mTLS): credentials, and certificate reload without restart.

The handshake requires a client certificate issued by the client CA. Only TLS 1.3 completes it:
the server key must be ECDSA (`check_key_type`, at start and on reload) while the only TLS 1.2
suites are ECDHE-RSA ones (server/cipher_policy.py). grpc checks nothing else of the client
certificate: server/identity.py does, per call, against `client_cas` (the last good load).

Reload: grpc calls `fetch` on each new handshake; it stats the three files (mtime, inode, size:
Kubernetes swaps a Secret volume's symlink) and returns new material only when something changed
and it loads cleanly. A broken or half-written file is logged once and the last good one kept.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int], ...]


class CertificateFiles:
    """The server key pair and client CA on disk, reloadable by `fetch`."""

    def __init__(self, cert_file: str, key_file: str, client_ca_file: str) -> None:
        self._paths = (Path(cert_file), Path(key_file), Path(client_ca_file))
        self._current: Signature | None = None
        self._rejected: Signature | None = None
        self.client_cas: tuple[x509.Certificate, ...] = ()

    def _signature(self) -> Signature:
        stats = [path.stat() for path in self._paths]
        return tuple((s.st_mtime_ns, s.st_ino, s.st_size) for s in stats)

    def load(self) -> grpc.ServerCertificateConfiguration:
        """Read and check the files; raises (OSError, ValueError) if they are unusable."""
        before = self._signature()
        cert, key, ca = self._paths
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)  # the key must match the certificate
        context.load_verify_locations(cafile=ca)
        material = cert.read_bytes(), key.read_bytes(), ca.read_bytes()
        check_key_type(material[0])
        client_cas = tuple(x509.load_pem_x509_certificates(material[2]))
        if self._signature() != before:
            raise OSError("certificate files changed while loading")
        self._current = before
        self.client_cas = client_cas
        warn_if_shared_ca(x509.load_pem_x509_certificate(material[0]), client_cas)
        return grpc.ssl_server_certificate_configuration(
            [(material[1], material[0])], root_certificates=material[2]
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc's certificate_configuration_fetcher: new config, or None to keep the current one."""
        try:
            signature = self._signature()
        except OSError:  # a file is missing: a state of its own, logged once
            signature = ()
        if signature in (self._current, self._rejected):
            return None
        try:
            config = self.load()
        except Exception as exc:  # noqa: BLE001 - raising here would break every handshake
            # Reject what was seen *before* loading: if a writer finished meanwhile, the finished
            # files have another signature and are tried at the next handshake.
            log.error("TLS files unusable; keeping the last good ones", extra={"error": str(exc)})
            self._rejected = signature
            return None
        log.info("TLS certificates reloaded")
        return config


def check_key_type(cert_pem: bytes) -> None:
    """Raise ValueError unless the server key is ECDSA: with an RSA key TLS 1.2 would work."""
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ValueError(
            "the server key must be ECDSA: replicant refuses TLS 1.2 by offering only RSA "
            "suites for it, which an RSA key would match"
        )


def warn_if_shared_ca(
    server_cert: x509.Certificate, client_cas: tuple[x509.Certificate, ...]
) -> None:
    """Whoever may obtain a server certificate from a client CA could also mint clients."""
    for ca in client_cas:
        try:
            server_cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        log.warning(
            "the client CA also issued the server certificate: anyone who can obtain a server "
            "certificate from it can call as a client; use a separate client CA",
            extra={"ca": ca.subject.rfc4514_string()},
        )
        return


def server_credentials(files: CertificateFiles) -> grpc.ServerCredentials:
    """Credentials that require a verified client certificate and follow file changes."""
    return grpc.dynamic_ssl_server_credentials(
        files.load(),
        files.fetch,  # type: ignore[arg-type] # grpc documents None as "keep current"; stubs don't
        require_client_authentication=True,
    )

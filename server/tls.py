"""Server-side mutual TLS: cipher policy, credentials, and certificate reload without restart.

Policy (what is enforced, and where):
  * Client certificates are required and verified against --client-ca-file by the handshake.
  * TLS 1.3 (BoringSSL's fixed AEAD suites) and TLS 1.2 restricted to ECDHE key exchange with AEAD
    ciphers: server/cipher_policy.py, which must run before grpc is imported. TLS 1.0/1.1, CBC and
    static-RSA suites fail the handshake.
  * RPCs additionally require TLS 1.3: grpc reports the negotiated version in the auth context and
    the interceptor rejects anything else with UNAUTHENTICATED (server/interceptor.py). Python's
    grpc has no knob for the handshake's minimum version, hence the two layers.

Reload: grpc calls the fetcher on each new handshake; it stats the three files (mtime, inode, size;
Kubernetes swaps a Secret volume's symlink, so the inode changes) and returns new material only when
something changed and the new key, certificate and CA load cleanly. On a broken or half-written
file it logs once and keeps serving the last good configuration. It never raises.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import grpc

log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int], ...]


class CertificateFiles:
    """The server key pair and client CA on disk, reloadable by `fetch`."""

    def __init__(self, cert_file: str, key_file: str, client_ca_file: str) -> None:
        self._paths = (Path(cert_file), Path(key_file), Path(client_ca_file))
        self._current: Signature | None = None
        self._rejected: Signature | None = None
        self.reloads = 0

    def _signature(self) -> Signature:
        stats = [path.stat() for path in self._paths]
        return tuple((s.st_mtime_ns, s.st_ino, s.st_size) for s in stats)

    def load(self) -> grpc.ServerCertificateConfiguration:
        """Read and check the files; raises (OSError, ssl.SSLError) if they are unusable."""
        before = self._signature()
        cert, key, ca = self._paths
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)  # the key must match the certificate
        context.load_verify_locations(cafile=ca)
        material = cert.read_bytes(), key.read_bytes(), ca.read_bytes()
        if self._signature() != before:
            raise OSError("certificate files changed while loading")
        self._current = before
        return grpc.ssl_server_certificate_configuration(
            [(material[1], material[0])], root_certificates=material[2]
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc's certificate_configuration_fetcher: new config, or None to keep the current one."""
        signature = self._safe_signature()
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
        self.reloads += 1
        log.info("TLS certificates reloaded", extra={"reloads": self.reloads})
        return config

    def _safe_signature(self) -> Signature:
        """The files' signature; () while one is missing (a state of its own, logged once)."""
        try:
            return self._signature()
        except OSError:
            return ()


def server_credentials(files: CertificateFiles) -> grpc.ServerCredentials:
    """Credentials that require a verified client certificate and follow file changes."""
    return grpc.dynamic_ssl_server_credentials(
        files.load(),
        files.fetch,  # type: ignore[arg-type] # grpc documents None as "keep current"; stubs don't
        require_client_authentication=True,
    )

"""Server-side mutual TLS: cipher policy, credentials, and certificate reload without restart.

Policy (what is enforced, and where):
  * Client certificates are required and verified against --client-ca-file by the handshake.
  * Only TLS 1.3 completes a handshake: the server key must be ECDSA, and the only TLS 1.2 suites
    allowed are ECDHE-RSA ones (server/cipher_policy.py), so no TLS 1.2 suite can ever match and
    BoringSSL refuses TLS 1.2 before asking for a client certificate. `load` refuses any other key
    type, at start (the server does not start) and on reload (the last good files stay).
  * RPCs additionally require TLS 1.3 (server/interceptor.py), in case the above ever breaks:
    Python's grpc has no knob for the handshake's minimum version.
  * The client certificate's identity, extended key usage and SANs are checked per call
    (server/identity.py): grpc's handshake checks none of them.

Page-token keys (server/page_tokens.py) are derived here from the private key: every replica
mounts the same one, and the chart never renders a key.

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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int], ...]

_TOKEN_KEY_INFO = b"replicant page-token key v1"


class CertificateFiles:
    """The server key pair and client CA on disk, reloadable by `fetch`."""

    def __init__(self, cert_file: str, key_file: str, client_ca_file: str) -> None:
        self._paths = (Path(cert_file), Path(key_file), Path(client_ca_file))
        self._current: Signature | None = None
        self._rejected: Signature | None = None
        self.reloads = 0
        self._token_keys: tuple[bytes, ...] = ()

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
        token_key = page_token_key(material[1])
        if self._signature() != before:
            raise OSError("certificate files changed while loading")
        self._current = before
        if token_key not in self._token_keys:
            self._token_keys = (token_key, *self._token_keys[:1])
        return grpc.ssl_server_certificate_configuration(
            [(material[1], material[0])], root_certificates=material[2]
        )

    def page_token_keys(self) -> tuple[bytes, ...]:
        """The current key first, then the one before the last key change (if any)."""
        return self._token_keys

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


def check_key_type(cert_pem: bytes) -> None:
    """Raise ValueError unless the server key is ECDSA: with an RSA key TLS 1.2 would work."""
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ValueError(
            "the server key must be ECDSA: replicant refuses TLS 1.2 by offering only RSA "
            "suites for it, which an RSA key would match"
        )


def page_token_key(key_pem: bytes) -> bytes:
    """A 32-byte HMAC key for page tokens, derived from (and revealing nothing of) the TLS key."""
    private_key = serialization.load_pem_private_key(key_pem, password=None)
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_TOKEN_KEY_INFO).derive(der)


def server_credentials(files: CertificateFiles) -> grpc.ServerCredentials:
    """Credentials that require a verified client certificate and follow file changes."""
    return grpc.dynamic_ssl_server_credentials(
        files.load(),
        files.fetch,  # type: ignore[arg-type] # grpc documents None as "keep current"; stubs don't
        require_client_authentication=True,
    )

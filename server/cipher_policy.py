"""No TLS 1.2 at all, through the TLS 1.2 cipher list GRPC_SSL_CIPHER_SUITES.

grpc reads that variable once, when the `grpc` package is imported (checked with grpcio 1.85:
setting it after the import has no effect), so this module imports nothing from grpc and
`apply()` must run before anything imports grpc: first thing in `python -m server`, and from the
root conftest.py for tests.

grpcio has no minimum TLS version, so the list names only ECDHE-RSA suites while the server key
must be ECDSA (server/tls.py refuses any other): a TLS 1.2 ClientHello then shares no usable suite
and BoringSSL fails the handshake (NO_SHARED_CIPHER) before it sends a CertificateRequest, so no
client certificate crosses the wire in clear. TLS 1.3 suites do not depend on this list (BoringSSL
does not make them configurable; all are AEAD). grpc clients in this process (healthcheck, tests)
read the same list and speak TLS 1.3. The suites are still forward-secret AEAD ones, so a wrong key
type (which tls.py refuses anyway) could not fall back to weak cryptography.
"""

from __future__ import annotations

import os

CIPHER_SUITES = ":".join(
    [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)


def apply() -> None:
    os.environ["GRPC_SSL_CIPHER_SUITES"] = CIPHER_SUITES

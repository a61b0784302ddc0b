"""gRPC core settings read once, at `import grpc`: so `apply()` runs before anything imports grpc
(first thing in `python -m server`, and from the root conftest.py for tests). Checked with grpcio
1.85: set after the import, neither has an effect.

No TLS 1.2 (requirement: secure mTLS), through the TLS 1.2 cipher list GRPC_SSL_CIPHER_SUITES.
grpcio has no minimum TLS version, so the list names only ECDHE-RSA suites while the server key
must be ECDSA (server/tls.py refuses any other): a TLS 1.2 ClientHello then shares no usable suite
and BoringSSL fails the handshake (NO_SHARED_CIPHER) before it sends a CertificateRequest, so no
client certificate crosses the wire in clear. TLS 1.3 suites are BoringSSL's fixed AEAD set
(AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), not configurable; grpc clients in this process
(tests) read the same list and speak TLS 1.3.

No native log lines (requirement: JSON logs): GRPC_VERBOSITY=NONE. gRPC core otherwise writes
plain-text lines to stderr, some with bytes a caller chose before authenticating (a ClientHello's
server name, verbatim, newlines included), which could forge JSON log records.
TODO: count refused TLS handshakes once grpcio exposes a handshake callback (it has none: a
refused client never reaches an interceptor, and the certificate fetcher runs before verification).
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
    os.environ["GRPC_VERBOSITY"] = "NONE"

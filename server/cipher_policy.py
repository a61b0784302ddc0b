"""gRPC core settings read once, at `import grpc`: so `apply()` runs before anything imports grpc
(first thing in `python -m server`, and from the root conftest.py for tests).

No TLS 1.2 (requirement: secure mTLS; docs/design.md, "TLS 1.3 at the handshake"): the TLS 1.2
cipher list names only ECDHE-RSA suites while the server key must be ECDSA (server/tls.py), so a
TLS 1.2 ClientHello fails before any client certificate crosses the wire in clear.

No native log lines (requirement: JSON logs): gRPC core would write plain text to stderr, some of
it chosen by an unauthenticated caller (a ClientHello's server name, newlines included).
TODO: count refused TLS handshakes once grpcio exposes a handshake callback (it has none).
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

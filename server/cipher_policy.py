"""The TLS 1.2 cipher policy, applied through GRPC_SSL_CIPHER_SUITES.

grpc reads that variable once, when the `grpc` package is imported (checked with grpcio 1.85:
setting it after the import has no effect), so this module imports nothing from grpc and
`apply()` must run before anything imports grpc: first thing in `python -m server`, and from the
root conftest.py for tests.

Only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305). TLS 1.3 suites are not
configurable in BoringSSL and are all AEAD.
"""

from __future__ import annotations

import os

CIPHER_SUITES = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)


def apply() -> None:
    os.environ["GRPC_SSL_CIPHER_SUITES"] = CIPHER_SUITES

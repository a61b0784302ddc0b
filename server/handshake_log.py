"""Refused TLS handshakes, logged as JSON (rate-limited) and counted for /metrics.

Why this way: grpcio gives Python no hook on a failed handshake; a refused client never reaches an
interceptor, and the certificate fetcher (server/tls.py) runs before verification, so it cannot
tell a refused handshake from an accepted one. gRPC core does report each failure, as one line on
file descriptor 2 from `ssl_transport_security.cc`:

    I1201 21:39:18.014879 24727 ssl_transport_security.cc:2563] Handshake failed with error
    SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: ...

`install()` (before grpc is imported) puts a pipe on fd 2 and points Python's own `sys.stderr` at
the original stream, so only native writes (gRPC core, absl, faulthandler) cross the pipe. A
thread reads it: a handshake line becomes a count by reason (the BoringSSL reason code, a bounded
set) and at most one JSON line per reason per 10 s; every other line is passed through unchanged.

Limits: the line names no peer address or certificate, so neither does the log; it depends on
gRPC core's wording (a test pins it for the locked grpcio); GRPC_VERBOSITY above INFO hides it;
and a native message written just before the process aborts may die in the pipe with it.
TODO: drop this for a handshake callback if grpcio ever exposes one.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections import Counter
from typing import Final

from server.logs import RateLimiter

log = logging.getLogger("replicant.security")

_LINE: Final = re.compile(
    rb"ssl_transport_security\.cc:\d+\] Handshake failed with error (?P<error>[A-Z_]+)"
    rb"(?:: (?P<detail>.*))?"
)
_REASON: Final = re.compile(rb"OPENSSL_internal:(?P<reason>[A-Z0-9_]+)(?:: (?P<why>.*))?")


def parse(line: bytes) -> tuple[str, str] | None:
    """(reason, detail) of a gRPC core handshake-failure line, else None."""
    match = _LINE.search(line)
    if match is None:
        return None
    detail = match.group("detail") or b""
    reason = _REASON.search(detail)
    if reason is None:
        return match.group("error").decode(), ""
    why = (reason.group("why") or b"").decode("ascii", "replace")
    return reason.group("reason").decode(), why[:200]


class HandshakeTap:
    """Reads native stderr lines from `source`, counts handshake failures, forwards the rest."""

    def __init__(self, source: int, forward: int) -> None:
        self._source = source
        self._forward = forward
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._limiter = RateLimiter()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def run(self) -> None:
        try:
            pending = b""
            while chunk := os.read(self._source, 65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._line(line)
            if pending:
                self._line(pending)
        except Exception:  # a full pipe would block gRPC core: stand aside
            os.dup2(self._forward, 2)
            log.exception("handshake log stopped; native stderr goes straight out again")

    def _line(self, line: bytes) -> None:
        try:
            parsed = parse(line)
        except Exception:  # noqa: BLE001 - never lose a line because of a parser bug
            parsed = None
        if parsed is None:
            os.write(self._forward, line + b"\n")
            return
        reason, why = parsed
        with self._lock:
            self._counts[reason] += 1
        suppressed = self._limiter.allow(reason)
        if suppressed is not None:
            log.warning(
                "TLS handshake refused",
                extra={"reason": reason, "detail": why, "suppressed": suppressed},
            )


_installed: HandshakeTap | None = None


def install() -> HandshakeTap:
    """Route native stderr through a HandshakeTap; idempotent; call before importing grpc."""
    global _installed  # one fd 2 per process
    if _installed is not None:
        return _installed
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = os.fdopen(original, "w", buffering=1, encoding="utf-8", errors="replace")
    _installed = HandshakeTap(read_end, original)
    threading.Thread(target=_installed.run, name="handshake-log", daemon=True).start()
    return _installed


def counts() -> dict[str, int]:
    """Refused handshakes by reason since start (empty when not installed, e.g. in tests)."""
    return {} if _installed is None else _installed.counts()

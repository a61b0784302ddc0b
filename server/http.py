"""Plaintext HTTP for probes and Prometheus: /livez, /readyz, /readyz/kubernetes, /metrics.

Why a separate plaintext port: kubelet probes and most scrapers cannot present client certificates.
Why asyncio streams and not a framework: four GET routes, no new dependency; /metrics is
prometheus_client's `generate_latest` of the App's registry. One request per
connection (Connection: close), request head bounded to 8 KiB and 5 s, so a slow client cannot pin
resources. Nothing here reveals Deployments or identities.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from server.health import Readiness

log = logging.getLogger(__name__)

MAX_HEAD = 8192
READ_TIMEOUT = 5.0


class ProbeServer:
    def __init__(self, readiness: Readiness, registry: CollectorRegistry) -> None:
        self._readiness = readiness
        self._registry = registry
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, host, port, limit=MAX_HEAD)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def route(self, method: str, path: str) -> tuple[int, str, str | bytes]:
        """(status, content type, body) for one request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", "method not allowed\n"
        path = path.split("?", 1)[0]
        if path == "/livez":
            return 200, "text/plain", "ok\n"
        if path == "/readyz":
            reason = self._readiness.reason()
            return (503, "text/plain", f"{reason}\n") if reason else (200, "text/plain", "ok\n")
        if path == "/readyz/kubernetes":  # for people: it is not what readiness depends on
            if self._readiness.kubernetes_reachable:
                return 200, "text/plain", "ok\n"
            return 503, "text/plain", "Kubernetes API server not answered recently\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        return 404, "text/plain", "not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            body: str | bytes
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                status, ctype, body = 400, "text/plain", "bad request\n"
            else:
                status, ctype, body = self.route(parts[0], parts[1])
            payload = body.encode() if isinstance(body, str) else body
            writer.write(
                (
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    f"Content-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
            )
            if parts[0] != "HEAD":
                writer.write(payload)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a broken or slow client; nothing worth logging
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}

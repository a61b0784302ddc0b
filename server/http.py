"""Plaintext HTTP for probes and Prometheus (requirements: health checks, production-ready metrics):
/livez, /readyz, /metrics, served by aiohttp.web.

Why a separate plaintext port: kubelet probes and most scrapers cannot present client certificates.
Nothing here reveals Deployments or identities. Bounds: a request line or header field of at most
8 KiB, at most 32 header fields, and an idle connection (including one that never finishes its
head) closed after 5 s, so a slow client cannot pin resources.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from server.health import Readiness

# aiohttp logs every malformed request with a traceback at ERROR: a client's mistake, not ours,
# and a flood of them would flood the log. The three handlers below cannot fail otherwise.
_quiet = logging.getLogger("replicant.http")
_quiet.setLevel(logging.CRITICAL)

MAX_FIELD = 8192
MAX_HEADERS = 32
IDLE_TIMEOUT_S = 5.0


class ProbeServer:
    def __init__(self, readiness: Readiness, registry: CollectorRegistry) -> None:
        self._readiness = readiness
        self._registry = registry
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            logger=_quiet,
            keepalive_timeout=IDLE_TIMEOUT_S,
            max_line_size=MAX_FIELD,
            max_field_size=MAX_FIELD,
            max_headers=MAX_HEADERS,
        )

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        for address in self._runner.addresses:  # the bound (host, port): port 0 is read back here
            return int(address[1])
        raise OSError("the probe port did not bind")

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _livez(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        reason = self._readiness.reason()
        return web.Response(status=503 if reason else 200, text=f"{reason or 'ok'}\n")

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

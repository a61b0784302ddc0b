"""API server liveness probe: a cheap GET /readyz every few seconds, remembered as "last answered".

Why: a watch can sit quietly for minutes, so its silence says nothing about the API server. The
probe gives readiness a fresh fact: replicant serves only while the API server answered 200 within
`stale_after` seconds. Each probe is bounded by `timeout`, so the worst-case detection time is
stale_after + interval (plus one health refresh period), which the defaults keep under 10 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import aiohttp

from server.kube.errors import KubeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from server.kube.client import ApiTransport

log = logging.getLogger(__name__)


class ApiServerProbe:
    def __init__(
        self,
        api: ApiTransport,
        *,
        interval: float = 2.0,
        timeout: float = 2.0,
        stale_after: float = 7.0,
        path: str = "/readyz",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._interval = interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stale_after = stale_after
        self._path = path
        self._clock = clock
        self._last_ok: float | None = None
        self.failures = 0

    @property
    def reachable(self) -> bool:
        """True while the API server answered within the last `stale_after` seconds."""
        return self._last_ok is not None and self._clock() - self._last_ok < self._stale_after

    async def probe_once(self) -> bool:
        try:
            await self._api.request("GET", self._path, limits=self._timeout, expect_json=False)
        except KubeError as exc:
            self.failures += 1
            log.debug("API server probe failed", extra={"error": str(exc)})
            return False
        self._last_ok = self._clock()
        return True

    async def run(self) -> None:
        while True:
            was = self.reachable
            await self.probe_once()
            if was != self.reachable:
                log.info("API server reachable" if self.reachable else "API server unreachable")
            await asyncio.sleep(self._interval)

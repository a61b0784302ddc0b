"""API-server probe: GET /readyz every few seconds, remembered as "last answered".

Requirement: reads keep answering through an outage and say how old they are (`as_of`). A quiet
watch says nothing about the API server, so the probe gives `answering` (the last probe succeeded;
writes fail fast while it did not) and `last_ok` (the bound of every cache's freshness). A
recovery runs `on_recovered`, so the informers retry at once instead of sleeping out their backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final

import aiohttp

from kube.errors import KubeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from kube.client import ApiTransport

log = logging.getLogger(__name__)

TIMEOUT: Final = aiohttp.ClientTimeout(total=2.0)


class ApiServerProbe:
    def __init__(
        self,
        api: ApiTransport,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._interval = interval
        self._clock = clock
        self.last_ok: float | None = None  # clock time of the last 200; None: never answered
        self._last_failed = True  # never answered yet: the first answer is a recovery
        self.on_recovered: list[Callable[[], None]] = []
        self.failures = 0

    @property
    def answering(self) -> bool:
        """The most recent probe succeeded (False before the first answer)."""
        return not self._last_failed

    async def probe_once(self) -> bool:
        try:
            await self._api.request("GET", "/readyz", limits=TIMEOUT, expect_json=False)
        except KubeError as exc:
            self.failures += 1
            self._last_failed = True
            log.debug("API server probe failed", extra={"error": str(exc)})
            return False
        recovered, self._last_failed = self._last_failed, False
        self.last_ok = self._clock()
        if recovered:  # the callbacks are Informer.retry_now, which cannot fail
            for callback in self.on_recovered:
                callback()
        return True

    async def run(self) -> None:
        while True:
            was = self.answering
            if await self.probe_once() != was:
                log.info("API server answering" if not was else "API server not answering")
            await asyncio.sleep(self._interval)

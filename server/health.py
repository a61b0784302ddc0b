"""Readiness and freshness (requirements: health checks; reads through API server outages): one
truth for gRPC health, /readyz and the UNAVAILABLE answers.

The rules (docs/design.md, "Caching"):
  * ready (health "" and replicant.v1.ReplicaService SERVING, /readyz 200): not shutting down and
    every read cache (Deployments, ReplicaTargets) has completed its first list. The API server's
    reachability is left out on purpose: during an outage the Service's endpoints cannot change
    anyway, and a readiness that fell with the API server came back only after it did, taking
    every replica out just as the caches recovered. HPA caches are the reconciler's alone.
  * reads answer whenever the caches have listed once, API server or not, and every answer
    carries `as_of`: when the caches last heard from the API server. On SIGTERM readiness turns
    false and grpc stops taking new calls at once (server/app.py): the chart's preStop sleep is
    what lets endpoints drop the pod first; calls already in flight finish.
  * writes need the API server too: while its probe fails, Set is UNAVAILABLE at once.
    Whether it answers is for people and alerts: replicant_cache_age_seconds and
    replicant_apiserver_probe_failures_total (server/metrics.py), not a health check.
gRPC health is pushed by `publish_health` every 0.25 s (every 20 ms until first ready, so SERVING
follows the caches' first sync at once), and at once on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]

from server.authz import SERVICE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

HEALTH_SERVICES = ("", SERVICE)


class Cache(Protocol):
    @property
    def current_as_of(self) -> float | None: ...


class ApiServer(Protocol):
    @property
    def answering(self) -> bool: ...

    @property
    def last_ok(self) -> float | None: ...


class Readiness:
    def __init__(
        self,
        caches: Sequence[Cache],
        api_server: ApiServer,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._caches = list(caches)
        self._api_server = api_server
        self._clock = clock
        self._wall_clock = wall_clock
        self.draining = False

    @property
    def ready(self) -> bool:
        return not self.reason()

    def reason(self, *, for_reads: bool = False) -> str:
        """Why the server is not ready ("" when it is).

        `for_reads` ignores draining: while shutting down, probes say "not ready" so no new traffic
        comes, but calls that still arrive are answered from the (still fresh) cache.
        """
        if self.draining and not for_reads:
            return "shutting down"
        if any(cache.current_as_of is None for cache in self._caches):
            return "cache not synced"
        return ""

    def write_reason(self) -> str:
        """Why a write cannot be tried now ("" when it can)."""
        if reason := self.reason(for_reads=True):
            return reason
        if not self._api_server.answering:
            return "Kubernetes API server unavailable"
        return ""

    def as_of(self) -> datetime | None:
        """Wall-clock time the read caches last heard from the API server; None before sync."""
        oldest = self._api_server.last_ok
        for cache in self._caches:
            at = cache.current_as_of
            if at is None:
                return None
            if oldest is None or at < oldest:
                oldest = at
        if oldest is None:  # no caches and no probe answer: as of now
            return self._wall_clock()
        return self._wall_clock() - timedelta(seconds=max(0.0, self._clock() - oldest))

    def age_seconds(self) -> float | None:
        as_of = self.as_of()
        return None if as_of is None else (self._wall_clock() - as_of).total_seconds()


async def set_health(servicer: health_aio.HealthServicer, serving: bool) -> None:
    answer = health_pb2.HealthCheckResponse
    for service in HEALTH_SERVICES:
        await servicer.set(service, answer.SERVING if serving else answer.NOT_SERVING)


async def publish_health(
    readiness: Readiness,
    servicer: health_aio.HealthServicer,
    period: float = 0.25,
    *,
    startup_period: float = 0.02,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Push readiness into grpc.health.v1 on change (until cancelled)."""
    current: bool | None = None
    ever_ready = False
    while True:
        serving = readiness.ready
        if serving != current:
            await set_health(servicer, serving)
            current = serving
            log.info("health changed", extra={"serving": serving, "reason": readiness.reason()})
        ever_ready = ever_ready or serving
        await sleep(period if ever_ready else startup_period)

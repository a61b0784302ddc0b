"""Readiness and freshness (requirements: health checks; reads through API server outages): one
truth for gRPC health, /readyz and the UNAVAILABLE answers (rules: docs/design.md, "API-server
outages").

Ready: not draining, and every read cache (Deployments, ReplicaTargets) has listed once; the API
server's reachability is left out on purpose, so an outage removes no endpoints. Reads answer
while draining; writes also need the API server's probe to pass. Every answer carries `as_of`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]

from server.authz import SERVICE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped]

    from kube.informer import Informer
    from kube.probe import ApiServerProbe

log = logging.getLogger(__name__)

HEALTH_SERVICES = ("", SERVICE)


class Readiness:
    def __init__(
        self,
        caches: Sequence[Informer[Any]],
        api_server: ApiServerProbe,
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


async def serve_when_ready(
    readiness: Readiness, servicer: health_aio.HealthServicer, period: float = 0.02
) -> None:
    """Turn grpc.health.v1 SERVING once ready. Readiness falls again only on shutdown, which
    sets NOT_SERVING itself (HealthServicer.enter_graceful_shutdown)."""
    while not readiness.ready:  # noqa: ASYNC110 - the caches signal no event on their first sync
        await asyncio.sleep(period)
    await set_health(servicer, serving=True)
    log.info("health SERVING")

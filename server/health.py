"""Readiness: one truth for gRPC health, /readyz and the UNAVAILABLE answer of reads.

Ready means: not shutting down, every cache synced, and the API server answered the probe within
its window (server/kube/probe.py). Reads check the same on every call but ignore the first
condition (see `reason`). gRPC health (overall "" and replicant.v1.ReplicaService) is pushed by
`publish_health` every 0.25 s, and at once on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]

from server.authz import SERVICE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

HEALTH_SERVICES = ("", SERVICE)


class Syncable(Protocol):
    @property
    def synced(self) -> bool: ...


class Reachability(Protocol):
    @property
    def reachable(self) -> bool: ...


class Readiness:
    def __init__(self, caches: Sequence[Syncable], api_server: Reachability) -> None:
        self._caches = list(caches)
        self._api_server = api_server
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
        if not self._api_server.reachable:
            return "Kubernetes API server not answered recently"
        if not all(cache.synced for cache in self._caches):
            return "cache not synced"
        return ""


async def set_health(servicer: health_aio.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for service in HEALTH_SERVICES:
        await servicer.set(service, status)


async def publish_health(
    readiness: Readiness, servicer: health_aio.HealthServicer, period: float = 0.25
) -> None:
    """Push readiness into grpc.health.v1 whenever it changes (runs until cancelled)."""
    current: bool | None = None
    while True:
        ready = readiness.ready
        if ready != current:
            await set_health(servicer, ready)
            log.info("health changed", extra={"serving": ready, "reason": readiness.reason()})
            current = ready
        await asyncio.sleep(period)

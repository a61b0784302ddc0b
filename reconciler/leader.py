"""Leader election on a coordination.k8s.io/v1 Lease, in asyncio.

Requirement: every replica serves the API; only the Lease holder reconciles. client-go's
protocol, with expiry timed on our monotonic clock from when we saw the Lease change (no skew).
Why not kubernetes.aio.leaderelection: docs/design.md. Every call is bounded by the retry period
and losing the Lease cancels the leading task at once; shutdown releases it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kube.errors import ConflictError
from kube.leases import LeaseRecord

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from kube.leases import LeaseApi
    from reconciler.metrics import ReconcilerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElectionConfig:
    """Seconds; kube-controller-manager's defaults: lease 15, renew deadline 10, retry 2. One
    Lease call may take at most retry_period, so a hung API server cannot keep a leader that can
    no longer renew reconciling past its deadline."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeaderElector:
    """Campaigns for the Lease and runs `lead` only while holding it."""

    def __init__(
        self,
        client: LeaseApi,
        identity: str,
        config: ElectionConfig | None = None,
        *,
        metrics: ReconcilerMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._identity = identity
        self._config = config or ElectionConfig()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0  # clock time when _observed last changed
        self._leading = False
        self._metrics = metrics
        self._clock = clock  # expiry and the renew deadline; asyncio's loop uses the same
        # The API field is whole seconds; never round a short test lease down to zero.
        self._lease_seconds = max(1, round(self._config.lease_duration))

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign forever; lead while holding the Lease. Cancel to stop (releases it)."""
        while True:
            await self._acquire()
            try:
                await self._lead_while_renewing(lead)
            finally:
                self._leading = False
                self._metrics.set_leading(False)
            log.warning("lost leadership", extra={"identity": self._identity})
            # We may still hold the Lease (e.g. `lead` crashed): without a pause, a `lead` that
            # fails at once would be restarted in a tight loop of Lease writes.
            try:
                await asyncio.sleep(self._config.retry_period)
            except asyncio.CancelledError:
                await self._release()
                raise

    async def _acquire(self) -> None:
        while not await self.try_acquire_or_renew():  # noqa: ASYNC110 - polling the API is the protocol
            await asyncio.sleep(self._config.retry_period)
        self._leading = True
        self._metrics.set_leading(True)
        log.info("became leader", extra={"identity": self._identity})

    async def _lead_while_renewing(self, lead: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.ensure_future(lead())
        try:
            await self._renew_until_lost(task)
        except asyncio.CancelledError:
            # Graceful shutdown: stop leading first, then hand the Lease over at once.
            await _cancel(task)
            await self._release()
            raise
        await _cancel(task)

    async def _renew_until_lost(self, task: asyncio.Future[None]) -> None:
        """Return when the Lease is lost or `lead` ended (its failure is logged by `_cancel`)."""
        last_renewed = self._clock()
        while not task.done():
            # asyncio.wait neither raises the task's exception nor cancels it on timeout.
            await asyncio.wait({task}, timeout=self._config.retry_period)
            if task.done():
                break
            try:
                renewed = await self.try_acquire_or_renew()
            except ConflictError:
                log.warning("lease conflict on renew: another holder wrote it")
                return
            if renewed:
                last_renewed = self._clock()
            elif self._observed is not None and self._observed.holder not in ("", self._identity):
                return  # held by another
            if self._clock() - last_renewed > self._config.renew_deadline:
                log.warning("renew deadline passed")
                return

    async def try_acquire_or_renew(self) -> bool:
        """One attempt. False: someone else holds a valid lease or the API did not answer.
        ConflictError escapes only while leading: the renew loop ends the term on it."""
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow our own
            # cancellation when the inner call finishes at the same moment.
            async with asyncio.timeout(self._config.retry_period):
                return await self._attempt()
        except ConflictError:
            if self._leading:
                raise
            return False
        except Exception as e:  # noqa: BLE001 - any API failure is "try again"
            log.info("lease attempt failed: %s", type(e).__name__)
            return False

    async def _attempt(self) -> bool:
        now = _now()
        current = await self._client.get()
        if current is None:
            fresh = LeaseRecord(self._identity, self._lease_seconds, now, now, 0)
            self._observe(await self._client.create(fresh), self._clock())
            return True
        if self._observed is None or dataclasses.astuple(current) != dataclasses.astuple(
            self._observed
        ):
            self._observe(current, self._clock())
        held_by_us = current.holder == self._identity
        expired = self._clock() > self._observed_at + current.lease_duration_seconds
        if current.holder and not held_by_us and not expired:
            return False
        record = LeaseRecord(
            holder=self._identity,
            lease_duration_seconds=self._lease_seconds,
            acquire_time=current.acquire_time if held_by_us else now,
            renew_time=now,
            transitions=current.transitions if held_by_us else current.transitions + 1,
            resource_version=current.resource_version,
        )
        self._observe(await self._client.update(record), self._clock())
        return True

    async def _release(self) -> None:
        """Best effort: empty holder and a 1 s lease so a follower takes over at once.

        Read first: the last answer seen may not be the last write applied (a renew that timed
        out after the API server applied it), and a write at the older resourceVersion would
        409 and leave the follower waiting out the whole lease."""
        observed = self._observed
        if observed is None or observed.holder != self._identity:
            return
        try:
            async with asyncio.timeout(self._config.retry_period):
                current = await self._client.get()
                if current is None or current.holder != self._identity:
                    return  # taken over meanwhile: not ours to release
                now = _now()
                await self._client.update(
                    dataclasses.replace(
                        current, holder="", lease_duration_seconds=1, acquire_time=now,
                        renew_time=now,
                    )
                )  # fmt: skip
            log.info("released lease", extra={"identity": self._identity})
        except Exception as e:  # noqa: BLE001 - shutting down; the lease will expire anyway
            log.warning("lease release failed: %s", type(e).__name__)

    def _observe(self, record: LeaseRecord, at: float) -> None:
        self._observed = record
        self._observed_at = at


async def _cancel(task: asyncio.Future[None]) -> None:
    """Cancel `task` and wait for it, without swallowing a cancellation of our own caller."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.error("leading task failed", exc_info=task.exception())

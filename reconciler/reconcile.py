"""reconcile(key): one idempotent pass for one ReplicaTarget, in controller-runtime's shape.

Load the target from the cache (gone: done, the Deployment is left as it is), read the
Deployment and any HPA from their caches, decide (decide.py), take at most one write
step, record the Event, write status only if it changed, then return a Result or raise
(the controller retries a raise with backoff). It never asks which event woke it.

A 409 on either write means a cache was behind the object, most often because of
replicant's own previous write: that is a quiet requeue, not a failure. Setting drift back
goes through a DriftGuard (drift.py), so a fight with another writer is bounded.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kube.errors import ApiUnavailableError, ConflictError, KubeError, NotFoundError
from reconciler.decide import (
    Decision,
    DeploymentFacts,
    EventSpec,
    ScaleStep,
    decide,
    drifted,
    scale_failed,
)
from reconciler.drift import DriftGuard

if TYPE_CHECKING:
    from collections.abc import Callable

    from kube.replicatargets import ReplicaTargetView, TargetStatus

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name): the ReplicaTarget's and its Deployment's

# After a 409: by then the watch event of the newer object has usually requeued the key; this
# is only the safety net if it is slow. Not rate-limited: nothing failed.
CONFLICT_REQUEUE_S = 1.0


@dataclass(frozen=True)
class Result:
    """requeue: again after the key's backoff; requeue_after: again after that many seconds."""

    requeue: bool = False
    requeue_after: float | None = None


class World(Protocol):
    """Cache reads (no API calls): what reconcile sees of the cluster."""

    def target(self, key: Key) -> ReplicaTargetView | None: ...

    def deployment(self, key: Key) -> DeploymentFacts | None: ...

    def autoscaler_for(self, key: Key) -> str | None:
        """Name of an HPA whose scaleTargetRef is this Deployment, if any."""
        ...


class Writer(Protocol):
    """The writes reconcile may make; each raises kube.errors on failure."""

    async def scale(self, key: Key, step: ScaleStep) -> None: ...

    async def write_status(self, target: ReplicaTargetView, status: TargetStatus) -> None: ...

    async def record_event(self, target: ReplicaTargetView, event: EventSpec) -> None:
        """Best effort: must not raise (an Event is a hint, not state)."""
        ...


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Reconciler:
    """Drives one ReplicaTarget's Deployment to spec.replicas."""

    def __init__(
        self,
        world: World,
        writer: Writer,
        clock: Callable[[], datetime.datetime] = _utcnow,
        drift: DriftGuard | None = None,
    ) -> None:
        self._world = world
        self._writer = writer
        self._clock = clock
        self._drift = drift or DriftGuard()

    async def reconcile(self, key: Key) -> Result:
        target = self._world.target(key)
        if target is None:
            # Deleted: stop managing. No finalizer, so there is nothing to clean up.
            self._drift.forget(key)
            return Result()
        now, deployment = self._clock(), self._world.deployment(key)
        hold = (
            self._drift.held_for(key, target.generation, now)
            if drifted(target, deployment)
            else None
        )
        decision = decide(target, deployment, self._world.autoscaler_for(key), now, hold)
        try:
            if decision.scale is not None:
                await self._scale(key, target, decision.scale)
                if decision.corrects_drift:
                    self._drift.corrected(key, target.generation, now)
            await self._record(target, decision)
        except ConflictError:
            log.debug("conflict: a cache is behind; requeued", extra={"key": "/".join(key)})
            return Result(requeue_after=CONFLICT_REQUEUE_S)
        if decision.requeue_after is not None:
            return Result(requeue_after=decision.requeue_after.total_seconds())
        return Result(requeue=decision.requeue_with_backoff)

    async def _scale(self, key: Key, target: ReplicaTargetView, step: ScaleStep) -> None:
        try:
            await self._writer.scale(key, step)
        except (ConflictError, NotFoundError, ApiUnavailableError):
            # Transient or already visible to the caches: a 409 means the Deployment changed
            # since the cache saw it (reconcile requeues it quietly), a 404 that it is gone.
            # Its watch event requeues the key; the raise retries in case that event is slow.
            raise
        except KubeError as e:
            # RBAC or validation: a person has to act; say so on the object, then back off.
            await self._record(
                target, scale_failed(target, f"scale write refused: {e}", self._clock())
            )
            raise ScaleFailedError(str(e)) from e

    async def _record(self, target: ReplicaTargetView, decision: Decision) -> None:
        """The Event of a write that happened, then status, then the Event of entering a reason.

        Entering a reason is only true once the status that enters it is written: when two
        passes race on a stale cache, the loser's status write 409s and it records nothing.
        """
        acted = decision.scale is not None
        if acted and decision.event is not None:
            await self._writer.record_event(target, decision.event)
        if decision.status != target.status:
            await self._writer.write_status(target, decision.status)
        if not acted and decision.event is not None:
            await self._writer.record_event(target, decision.event)


class ScaleFailedError(Exception):
    """The scale write was refused; ScaleFailed is recorded and the key backs off."""

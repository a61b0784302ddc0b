"""reconcile(key): one idempotent pass for one ReplicaTarget, in controller-runtime's shape.

Requirement: the Deployment is driven to the desired count, by the rules of docs/design.md
("Reconciliation"). Load the target from the cache (gone: done), decide (decide.py), take at
most one write, record the Event, write status only if it changed, return a Result or raise.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kube.errors import AccessDeniedError, AdmissionDeniedError, ConflictError, InvalidError
from reconciler.decide import (
    Decision,
    ScaleStep,
    decide,
    drifted,
    scale_failed,
)
from reconciler.drift import DriftGuard

if TYPE_CHECKING:
    from collections.abc import Callable

    from kube.replicatargets import ReplicaTargetView, TargetStatus
    from kube.views import DeploymentView

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name): the ReplicaTarget's and its Deployment's

# After a 409 the newer object's watch event usually requeues the key first; not rate-limited.
CONFLICT_REQUEUE_S = 1.0


@dataclass(frozen=True)
class Result:
    """requeue_after: again after that many seconds; None: done until an event wakes the key."""

    requeue_after: float | None = None


class TerminalError(Exception):
    """A failure only a person can fix (a refused scale: ScaleFailed is recorded): counted and
    logged, never retried with backoff."""


class World(Protocol):
    """Cache reads (no API calls): what reconcile sees of the cluster."""

    def target(self, key: Key) -> ReplicaTargetView | None: ...

    def deployment(self, key: Key) -> DeploymentView | None: ...

    def autoscaler_for(self, key: Key) -> str | None: ...  # an HPA scaling this Deployment


class Writer(Protocol):
    """The writes reconcile may make (kube/scale.py); each raises kube.errors on failure."""

    async def scale(self, key: Key, replicas: int, resource_version: str) -> None: ...

    async def write_status(self, target: ReplicaTargetView, status: TargetStatus) -> None: ...

    async def record_event(
        self, target: ReplicaTargetView, type_: str, reason: str, message: str
    ) -> None:
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
        # Key -> (generation, Deployment resourceVersion) of a scale the API server refused.
        self._refused: dict[Key, tuple[int, str]] = {}

    async def reconcile(self, key: Key) -> Result:
        target = self._world.target(key)
        if target is None:
            # Deleted: stop managing. No finalizer, so there is nothing to clean up.
            self._drift.forget(key)
            self._refused.pop(key, None)
            return Result()
        now, deployment = self._clock(), self._world.deployment(key)
        hold = (
            self._drift.held_for(key, target.generation, now)
            if drifted(target, deployment)
            else None
        )
        decision = decide(target, deployment, self._world.autoscaler_for(key), now, hold)
        if decision.scale is not None and self._refused.get(key) == (
            target.generation,
            decision.scale.resource_version,
        ):
            return Result()  # refused before, and nothing a person could fix has changed
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
        return Result()

    async def _scale(self, key: Key, target: ReplicaTargetView, step: ScaleStep) -> None:
        """Anything but a refusal (409: a cache is behind, 404, outage) propagates: retried."""
        try:
            await self._writer.scale(key, step.replicas, step.resource_version)
        except (AccessDeniedError, AdmissionDeniedError, InvalidError) as e:
            # RBAC, admission or validation: a person has to act; say so and stop trying.
            # Remembered only once ScaleFailed is written: a 409 on that write tries again.
            await self._record(
                target, scale_failed(target, f"scale write refused: {e}", self._clock())
            )
            self._refused[key] = (target.generation, step.resource_version)
            raise TerminalError(str(e)) from e
        self._refused.pop(key, None)

    async def _record(self, target: ReplicaTargetView, decision: Decision) -> None:
        """The Event of a write that happened, then status, then the Event of entering a reason.

        Entering a reason is only true once the status that enters it is written: when two
        passes race on a stale cache, the loser's status write 409s and it records nothing.
        """
        acted, event = decision.scale is not None, decision.event
        if acted and event is not None:
            await self._writer.record_event(target, event.type, event.reason, event.message)
        if decision.status != target.status:
            await self._writer.write_status(target, decision.status)
        if not acted and event is not None:
            await self._writer.record_event(target, event.type, event.reason, event.message)

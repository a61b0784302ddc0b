"""Reconciler.reconcile with in-memory caches and a recording writer: which writes happen."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from reconciler import conditions as cond
from reconciler.decide import DeploymentFacts, EventSpec, ScaleStep
from reconciler.reconcile import Key, Reconciler, Result, ScaleFailedError
from server.kube.errors import AccessDeniedError, ConflictError, KubeError
from server.kube.replicatargets import ReplicaTargetView, TargetStatus

KEY: Key = ("ns", "web")
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


class FakeWorld:
    def __init__(self, target: ReplicaTargetView | None, spec: int | None, hpa: str | None = None):
        self.t = target
        self.d = None if spec is None else DeploymentFacts("dep-1", "77", spec, spec)
        self.hpa = hpa

    def target(self, key: Key) -> ReplicaTargetView | None:
        return self.t

    def deployment(self, key: Key) -> DeploymentFacts | None:
        return self.d

    def autoscaler_for(self, key: Key) -> str | None:
        return self.hpa


class RecordingWriter:
    def __init__(self, scale_error: KubeError | None = None) -> None:
        self.scale_error = scale_error
        self.scaled: list[ScaleStep] = []
        self.statuses: list[TargetStatus] = []
        self.events: list[str] = []

    async def scale(self, key: Key, step: ScaleStep) -> None:
        if self.scale_error is not None:
            raise self.scale_error
        self.scaled.append(step)

    async def write_status(self, target: ReplicaTargetView, status: TargetStatus) -> None:
        self.statuses.append(status)

    async def record_event(self, target: ReplicaTargetView, event: EventSpec) -> None:
        self.events.append(event.reason)


def target(replicas: int = 3) -> ReplicaTargetView:
    return ReplicaTargetView("ns", "web", "uid", 1, "10", replicas)


def reconciler(world: FakeWorld, writer: RecordingWriter) -> Reconciler:
    return Reconciler(world, writer, clock=lambda: NOW)


@pytest.mark.asyncio
async def test_deleted_target_is_done_without_any_write() -> None:
    writer = RecordingWriter()

    result = await reconciler(FakeWorld(None, 5), writer).reconcile(KEY)

    assert result == Result()
    assert (writer.scaled, writer.statuses, writer.events) == ([], [], [])


@pytest.mark.asyncio
async def test_scale_then_status_then_event_on_a_difference() -> None:
    writer = RecordingWriter()

    await reconciler(FakeWorld(target(3), 1), writer).reconcile(KEY)

    assert writer.scaled == [ScaleStep(3, "77")]
    assert writer.events == ["Scaled"]
    (status,) = writer.statuses
    assert status.last_applied_replicas == 3


@pytest.mark.asyncio
async def test_unchanged_status_is_not_written_again() -> None:
    first = RecordingWriter()
    await reconciler(FakeWorld(target(3), 3), first).reconcile(KEY)
    converged = dataclasses.replace(target(3), status=first.statuses[0])
    second = RecordingWriter()

    await reconciler(FakeWorld(converged, 3), second).reconcile(KEY)

    assert (second.scaled, second.statuses, second.events) == ([], [], [])


@pytest.mark.asyncio
async def test_conflict_on_scale_raises_for_a_retry_and_writes_no_status() -> None:
    writer = RecordingWriter(scale_error=ConflictError("conflict"))

    with pytest.raises(ConflictError):
        await reconciler(FakeWorld(target(3), 1), writer).reconcile(KEY)

    assert (writer.statuses, writer.events) == ([], [])


@pytest.mark.asyncio
async def test_refused_scale_records_scale_failed_then_raises() -> None:
    writer = RecordingWriter(scale_error=AccessDeniedError("denied"))

    with pytest.raises(ScaleFailedError):
        await reconciler(FakeWorld(target(3), 1), writer).reconcile(KEY)

    assert writer.events == [cond.SCALE_FAILED]
    (status,) = writer.statuses
    assert status.conditions[0].reason == cond.SCALE_FAILED


@pytest.mark.asyncio
async def test_missing_deployment_asks_for_a_backoff_requeue() -> None:
    writer = RecordingWriter()

    result = await reconciler(FakeWorld(target(3), None), writer).reconcile(KEY)

    assert result == Result(requeue=True)
    assert writer.events == [cond.DEPLOYMENT_MISSING]

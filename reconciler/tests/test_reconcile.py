"""Reconciler.reconcile with in-memory caches and a recording writer: which writes happen."""

from __future__ import annotations

import dataclasses
import datetime
import logging

import pytest

from kube.errors import (
    AccessDeniedError,
    AdmissionDeniedError,
    ApiUnavailableError,
    ConflictError,
    InvalidError,
    KubeError,
)
from kube.replicatargets import ReplicaTargetView, TargetStatus
from kube.views import DeploymentView
from reconciler import conditions as cond
from reconciler.decide import ScaleStep
from reconciler.drift import DriftGuard
from reconciler.reconcile import (
    CONFLICT_REQUEUE_S,
    Key,
    Reconciler,
    Result,
    TerminalError,
)

KEY: Key = ("ns", "web")
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


def deployment(spec: int) -> DeploymentView:
    return DeploymentView("ns", "web", "dep-1", "77", spec, spec, spec, spec, spec, 1, 1)


class FakeWorld:
    def __init__(self, target: ReplicaTargetView | None, spec: int | None, hpa: str | None = None):
        self.t = target
        self.d = (
            None
            if spec is None
            else DeploymentView("ns", "web", "dep-1", "77", spec, spec, spec, spec, spec, 1, 1)
        )
        self.hpa = hpa

    def target(self, key: Key) -> ReplicaTargetView | None:
        return self.t

    def deployment(self, key: Key) -> DeploymentView | None:
        return self.d

    def autoscaler_for(self, key: Key) -> str | None:
        return self.hpa


class RecordingWriter:
    def __init__(
        self, scale_error: KubeError | None = None, status_error: KubeError | None = None
    ) -> None:
        self.scale_error = scale_error
        self.status_error = status_error
        self.scaled: list[ScaleStep] = []
        self.statuses: list[TargetStatus] = []
        self.events: list[str] = []

    async def scale(self, key: Key, replicas: int, resource_version: str) -> None:
        if self.scale_error is not None:
            raise self.scale_error
        self.scaled.append(ScaleStep(replicas, resource_version))

    async def write_status(self, target: ReplicaTargetView, status: TargetStatus) -> None:
        if self.status_error is not None:
            raise self.status_error
        self.statuses.append(status)

    async def record_event(
        self, target: ReplicaTargetView, type_: str, reason: str, message: str
    ) -> None:
        self.events.append(reason)


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
async def test_a_difference_is_scaled_with_status_and_an_event() -> None:
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
async def test_conflict_on_scale_is_a_quiet_requeue_and_writes_no_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = RecordingWriter(scale_error=ConflictError("conflict"))

    result = await reconciler(FakeWorld(target(3), 1), writer).reconcile(KEY)

    assert result == Result(requeue_after=CONFLICT_REQUEUE_S)  # not rate-limited: no failure
    assert (writer.statuses, writer.events) == ([], [])
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


@pytest.mark.asyncio
async def test_conflict_on_the_status_write_is_a_quiet_requeue() -> None:
    writer = RecordingWriter(status_error=ConflictError("conflict"))

    result = await reconciler(FakeWorld(target(3), 3), writer).reconcile(KEY)

    assert result == Result(requeue_after=CONFLICT_REQUEUE_S)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "refusal",
    [AccessDeniedError("denied"), AdmissionDeniedError("policy 'p'"), InvalidError("no")],
)
async def test_refused_scale_records_scale_failed_then_raises(refusal: KubeError) -> None:
    writer = RecordingWriter(scale_error=refusal)

    with pytest.raises(TerminalError):
        await reconciler(FakeWorld(target(3), 1), writer).reconcile(KEY)

    assert writer.events == [cond.SCALE_FAILED]
    (status,) = writer.statuses
    assert status.conditions[0].reason == cond.SCALE_FAILED


@pytest.mark.asyncio
async def test_missing_deployment_is_done_until_its_watch_wakes_the_key() -> None:
    writer = RecordingWriter()

    result = await reconciler(FakeWorld(target(3), None), writer).reconcile(KEY)

    assert result == Result()
    assert writer.events == [cond.DEPLOYMENT_MISSING]


@pytest.mark.asyncio
async def test_a_refused_scale_is_terminal_and_not_tried_again_until_something_changes() -> None:
    writer = RecordingWriter(scale_error=AccessDeniedError("denied"))
    world = FakeWorld(target(3), 1)
    rec = reconciler(world, writer)
    with pytest.raises(TerminalError):
        await rec.reconcile(KEY)
    assert world.t is not None
    assert world.d is not None
    world.t = dataclasses.replace(world.t, status=writer.statuses[-1])  # our status write
    writer.scale_error = None

    unchanged = await rec.reconcile(KEY)  # the resync, or the event of our status write
    scaled_before_any_change = list(writer.scaled)
    world.d = dataclasses.replace(world.d, resource_version="78")  # someone fixed something
    await rec.reconcile(KEY)

    assert (unchanged, scaled_before_any_change) == (Result(), [])
    assert writer.scaled == [ScaleStep(3, "78")]


@pytest.mark.asyncio
async def test_a_new_spec_after_a_refused_scale_is_tried_at_once() -> None:
    writer = RecordingWriter(scale_error=InvalidError("rejected"))
    world = FakeWorld(target(3), 1)
    rec = reconciler(world, writer)
    with pytest.raises(TerminalError):
        await rec.reconcile(KEY)
    writer.scale_error = None
    world.t = dataclasses.replace(target(4), generation=2)

    await rec.reconcile(KEY)

    assert writer.scaled == [ScaleStep(4, "77")]


@pytest.mark.asyncio
async def test_an_unavailable_api_server_on_scale_is_retried_not_terminal() -> None:
    writer = RecordingWriter(scale_error=ApiUnavailableError("down"))

    with pytest.raises(ApiUnavailableError):
        await reconciler(FakeWorld(target(3), 1), writer).reconcile(KEY)

    assert (writer.statuses, writer.events) == ([], [])


@pytest.mark.asyncio
async def test_scale_failed_is_recorded_as_an_event_only_when_first_entered() -> None:
    first = RecordingWriter(scale_error=AccessDeniedError("denied"))
    with pytest.raises(TerminalError):
        await reconciler(FakeWorld(target(3), 1), first).reconcile(KEY)
    failing = dataclasses.replace(target(3), status=first.statuses[0])
    retry = RecordingWriter(scale_error=AccessDeniedError("denied"))

    with pytest.raises(TerminalError):
        await reconciler(FakeWorld(failing, 1), retry).reconcile(KEY)

    assert (first.events, retry.events, retry.statuses) == ([cond.SCALE_FAILED], [], [])


class Fight:
    """Another writer that sets spec.replicas to 5 after every correction replicant makes."""

    def __init__(self, guard: DriftGuard) -> None:
        self.now = NOW
        self.writer = RecordingWriter()
        # replicant applied 3 to this Deployment before; someone has set it to 5 since.
        applied = TargetStatus(last_applied_replicas=3, deployment_uid="dep-1")
        self.world = FakeWorld(dataclasses.replace(target(3), status=applied), 5)
        self.reconciler = Reconciler(self.world, self.writer, clock=lambda: self.now, drift=guard)

    async def round(self) -> Result:
        result = await self.reconciler.reconcile(KEY)
        if self.writer.statuses:  # the cache catches up with replicant's status write
            assert self.world.t is not None
            self.world.t = dataclasses.replace(self.world.t, status=self.writer.statuses[-1])
        return result


@pytest.mark.asyncio
async def test_a_drift_fight_is_held_off_after_three_corrections_with_one_warning() -> None:
    fight = Fight(DriftGuard())

    results = [await fight.round() for _ in range(6)]

    assert len(fight.writer.scaled) == 3
    assert fight.writer.events == [*["DriftCorrected"] * 3, cond.CONFLICTING_WRITER]
    assert results[3:] == [Result(requeue_after=300.0)] * 3
    held = fight.writer.statuses[-1].conditions[0]
    assert (held.status, held.reason) == ("False", cond.CONFLICTING_WRITER)
    assert "now 5, desired 3" in held.message
    # The hold's status is written once, not once per round.
    held_writes = [w for w in fight.writer.statuses if w.conditions[0] == held]
    assert len(held_writes) == 1


@pytest.mark.asyncio
async def test_after_a_hold_one_correction_is_tried_and_the_next_hold_is_longer() -> None:
    fight = Fight(DriftGuard())
    for _ in range(4):
        await fight.round()

    fight.now += datetime.timedelta(minutes=5)
    probe = await fight.round()
    again = await fight.round()

    assert (probe, again) == (Result(), Result(requeue_after=600.0))
    assert len(fight.writer.scaled) == 4


@pytest.mark.asyncio
async def test_a_new_spec_starts_the_correction_count_again() -> None:
    fight = Fight(DriftGuard())
    for _ in range(4):
        await fight.round()
    assert fight.world.t is not None
    fight.world.t = dataclasses.replace(fight.world.t, generation=2)

    await fight.round()

    assert len(fight.writer.scaled) == 4


@pytest.mark.asyncio
async def test_a_pass_whose_status_write_loses_a_race_records_no_entering_event() -> None:
    # Another pass already entered DeploymentMissing; this one read the target before that.
    writer = RecordingWriter(status_error=ConflictError("conflict"))

    result = await reconciler(FakeWorld(target(3), None), writer).reconcile(KEY)

    assert (result, writer.events) == (Result(requeue_after=CONFLICT_REQUEUE_S), [])


@pytest.mark.asyncio
async def test_a_scale_is_recorded_even_if_the_status_write_after_it_loses_a_race() -> None:
    writer = RecordingWriter(status_error=ConflictError("conflict"))

    await reconciler(FakeWorld(target(3), 1), writer).reconcile(KEY)

    assert (writer.scaled, writer.events) == ([ScaleStep(3, "77")], ["Scaled"])

"""LeaderElector against an in-memory Lease that enforces resourceVersion preconditions."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING

import pytest
from prometheus_client import CollectorRegistry

from kube.errors import ConflictError
from kube.leases import LeaseApi
from reconciler.leader import ElectionConfig, LeaderElector
from reconciler.metrics import ReconcilerMetrics

if TYPE_CHECKING:
    from collections.abc import Callable

    from kube.leases import LeaseRecord

LEASE = "replicant-leader"
FAST = ElectionConfig(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)
WAIT_S = 5.0


class FakeLeaseStore:
    """One Lease object with an API server's optimistic concurrency."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self._version = 0

    def _bump(self, record: LeaseRecord) -> LeaseRecord:
        self._version += 1
        self.record = dataclasses.replace(record, resource_version=str(self._version))
        return self.record


class FakeLeaseClient(LeaseApi):
    """One process's view; `broken` makes every call fail like an unreachable API server."""

    def __init__(self, store: FakeLeaseStore) -> None:
        self.store = store
        self.broken = False
        self.conflict_next_update = False
        # The next update is applied but its answer is lost (a renew that timed out).
        self.lose_next_answer = False

    def _check(self) -> None:
        if self.broken:
            raise ConnectionError("API server unreachable")

    async def get(self) -> LeaseRecord | None:
        self._check()
        return self.store.record

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        self._check()
        if self.store.record is not None:
            raise ConflictError("conflict")
        return self.store._bump(record)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        self._check()
        current = self.store.record
        if self.conflict_next_update or current is None:
            self.conflict_next_update = False
            raise ConflictError("conflict")
        if current.resource_version != record.resource_version:
            raise ConflictError("conflict")
        applied = self.store._bump(record)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise TimeoutError
        return applied


class Candidate:
    """A LeaderElector whose `lead` task flags whether it is running."""

    def __init__(self, store: FakeLeaseStore, identity: str, config: ElectionConfig = FAST) -> None:
        self.client = FakeLeaseClient(store)
        self.registry = CollectorRegistry()
        metrics = ReconcilerMetrics(self.registry, lease=LEASE)
        self.elector = LeaderElector(self.client, identity, config, metrics=metrics)
        self.leading = asyncio.Event()
        self.stopped = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _lead(self) -> None:
        self.leading.set()
        self.stopped.clear()
        try:
            await asyncio.Event().wait()
        finally:
            self.leading.clear()
            self.stopped.set()

    def leader_gauge(self) -> float | None:
        name = "replicant_leader_election_master_status"
        return self.registry.get_sample_value(name, {"name": LEASE})

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.elector.run(self._lead))

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.mark.asyncio
async def test_lone_candidate_creates_the_lease_and_leads() -> None:
    store = FakeLeaseStore()
    a = Candidate(store, "a")
    a.start()

    await asyncio.wait_for(a.leading.wait(), WAIT_S)

    assert store.record is not None
    assert store.record.holder == "a"
    assert a.leader_gauge() == 1
    await a.stop()


@pytest.mark.asyncio
async def test_a_lease_is_taken_over_only_once_unchanged_for_its_duration() -> None:
    store, now = FakeLeaseStore(), [0.0]
    metrics = ReconcilerMetrics(CollectorRegistry(), lease=LEASE)
    a, b = (
        LeaderElector(FakeLeaseClient(store), name, FAST, metrics=metrics, clock=lambda: now[0])
        for name in ("a", "b")
    )

    taken = [await a.try_acquire_or_renew(), await b.try_acquire_or_renew()]  # b sees it at 0.0
    now[0] = 0.9
    taken += [await a.try_acquire_or_renew()]  # a renews
    for now[0] in (1.5, 2.4, 2.6):  # b sees the renewal at 1.5: the lease (1 s) runs from there
        taken += [await b.try_acquire_or_renew()]

    assert taken == [True, False, True, False, False, True]
    assert store.record is not None
    assert (store.record.holder, store.record.transitions) == ("b", 1)


@pytest.mark.asyncio
async def test_leader_cut_off_from_the_api_stops_leading_and_the_other_takes_over() -> None:
    store = FakeLeaseStore()
    a, b = Candidate(store, "a"), Candidate(store, "b")
    a.start()
    await asyncio.wait_for(a.leading.wait(), WAIT_S)
    b.start()

    a.client.broken = True

    await asyncio.wait_for(a.stopped.wait(), WAIT_S)
    await asyncio.wait_for(b.leading.wait(), WAIT_S)
    assert store.record is not None
    assert store.record.holder == "b"
    assert store.record.transitions == 1
    await a.stop()
    await b.stop()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the value
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_leader_gauge_is_one_only_while_holding_the_lease() -> None:
    store = FakeLeaseStore()
    a, b = Candidate(store, "a"), Candidate(store, "b")
    before = (a.leader_gauge(), b.leader_gauge())
    a.start()
    await asyncio.wait_for(a.leading.wait(), WAIT_S)
    b.start()
    while_a_leads = (a.leader_gauge(), b.leader_gauge())

    a.client.broken = True
    await asyncio.wait_for(b.leading.wait(), WAIT_S)
    await until(lambda: a.leader_gauge() == 0)  # a's term ends after its lead task has stopped
    after_b_took_over = (a.leader_gauge(), b.leader_gauge())
    await a.stop()
    await b.stop()

    assert before == (0.0, 0.0)
    assert while_a_leads == (1.0, 0.0)
    assert after_b_took_over == (0.0, 1.0)


@pytest.mark.asyncio
async def test_conflict_on_renew_stops_leading_at_once() -> None:
    store = FakeLeaseStore()
    a = Candidate(store, "a")
    a.start()
    await asyncio.wait_for(a.leading.wait(), WAIT_S)

    a.client.conflict_next_update = True

    # Only the next update conflicts: an elector that retried until the renew deadline would
    # renew successfully and never stop, so stopping at all proves it stopped at once.
    await asyncio.wait_for(a.stopped.wait(), WAIT_S)
    await a.stop()


@pytest.mark.asyncio
async def test_graceful_stop_releases_the_lease_so_a_follower_leads_at_once() -> None:
    store = FakeLeaseStore()
    # A lease far longer than the wait below: b can only lead in time if a released it.
    long_lease = dataclasses.replace(FAST, lease_duration=WAIT_S * 20)
    a, b = Candidate(store, "a", long_lease), Candidate(store, "b", long_lease)
    a.start()
    await asyncio.wait_for(a.leading.wait(), WAIT_S)
    b.start()
    await asyncio.sleep(FAST.retry_period * 2)  # b has seen a's valid lease

    await a.stop()

    assert a.stopped.is_set()
    assert store.record is not None
    assert (store.record.holder, store.record.lease_duration_seconds) == ("", 1)
    await asyncio.wait_for(b.leading.wait(), WAIT_S)
    await b.stop()


@pytest.mark.asyncio
async def test_release_after_a_renew_whose_answer_was_lost_still_hands_over_at_once() -> None:
    store = FakeLeaseStore()
    a = Candidate(store, "a", dataclasses.replace(FAST, lease_duration=WAIT_S * 20))
    a.start()
    await asyncio.wait_for(a.leading.wait(), WAIT_S)

    a.client.lose_next_answer = True
    await until(lambda: not a.client.lose_next_answer)  # a renew applied, its answer lost
    await a.stop()

    assert store.record is not None
    assert (store.record.holder, store.record.lease_duration_seconds) == ("", 1)


@pytest.mark.asyncio
async def test_a_lead_that_fails_at_once_is_restarted_after_a_retry_period_not_in_a_loop() -> None:
    store = FakeLeaseStore()
    metrics = ReconcilerMetrics(CollectorRegistry(), lease=LEASE)
    elector = LeaderElector(FakeLeaseClient(store), "a", FAST, metrics=metrics)
    loop = asyncio.get_running_loop()
    started_at: list[float] = []
    restarted = asyncio.Event()

    async def failing_lead() -> None:
        started_at.append(loop.time())
        if len(started_at) == 2:
            restarted.set()
        raise RuntimeError("controller bug")

    task = asyncio.ensure_future(elector.run(failing_lead))
    await asyncio.wait_for(restarted.wait(), WAIT_S)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert started_at[1] - started_at[0] >= FAST.retry_period

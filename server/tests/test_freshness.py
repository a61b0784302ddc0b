"""Reads outlive API-server blips: cache freshness, the probe's facts, and the readiness rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]
from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped]

from kube.backoff import Backoff
from kube.errors import ApiUnavailableError
from kube.informer import Informer
from kube.probe import ApiServerProbe
from kube.tests.fakes import Clock, FakeKube, deployment, running, until
from kube.views import DeploymentView, deployment_view
from server.health import Readiness, serve_when_ready
from server.tests.conftest import started

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

PATH = "/apis/apps/v1/deployments"


def informer(kube: FakeKube, clock: Clock, backoff: Backoff) -> Informer[DeploymentView]:
    return Informer(
        kube,
        resource="deployments",
        path=PATH,
        convert=deployment_view,
        backoff=backoff,
        clock=clock,
    )


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    fake.objects[PATH] = [deployment("a", "d")]
    return fake


@pytest.mark.asyncio
async def test_cache_is_current_while_watching_and_frozen_from_the_first_failure(
    kube: FakeKube,
) -> None:
    clock = Clock()
    draws: list[float] = []

    def draw(_low: float, high: float) -> float:
        draws.append(high)
        return 0.0

    cache = informer(kube, clock, Backoff(uniform=draw))
    before_list = cache.current_as_of
    async with running(cache):
        watch = await kube.next_watch(1)
        clock.now += 5
        watching = cache.current_as_of
        kube.down = True
        watch.events.put_nowait(ApiUnavailableError("reset"))
        await until(lambda: bool(draws))  # failed, backing off
        failed_at = clock.now
        clock.now += 30
        during = cache.current_as_of
        kube.down = False
        await kube.next_watch(2)
        after = cache.current_as_of
    assert before_list is None
    assert watching == 1005.0
    assert during == failed_at  # the age grows with the outage
    assert after == clock.now


@pytest.mark.asyncio
async def test_retry_now_cuts_a_long_backoff_pause_short_and_starts_the_backoff_over(
    kube: FakeKube,
) -> None:
    pauses: list[float] = []

    def longest(_low: float, high: float) -> float:
        pauses.append(high)
        return high

    cache = informer(kube, Clock(), Backoff(base=30.0, cap=120.0, uniform=longest))
    kube.down = True
    async with running(cache):
        await until(lambda: len(pauses) == 1)  # sleeping 30 s
        cache.retry_now()
        await until(lambda: len(pauses) == 2)  # failed again at once, and sleeping 30 s, not 60
        kube.down = False
        cache.retry_now()
        async with asyncio.timeout(2):
            await kube.next_watch(1)
    assert pauses == [30.0, 30.0]
    assert cache.current_as_of is not None


@pytest.mark.asyncio
async def test_probe_reports_recovery_once_after_failures_and_answering_tracks_the_last_probe(
    kube: FakeKube,
) -> None:
    clock = Clock()
    probe = ApiServerProbe(kube, clock=clock)
    recoveries: list[float] = []
    probe.on_recovered.append(lambda: recoveries.append(clock.now))

    await probe.probe_once()  # the first answer counts as a recovery (informers may be waiting)
    await probe.probe_once()
    kube.down = True
    clock.now += 1
    await probe.probe_once()
    failed = probe.answering
    clock.now += 7
    kube.down = False
    await probe.probe_once()
    await probe.probe_once()

    assert recoveries == [1000.0, 1008.0]
    assert failed is False  # writes stop at the first failed probe
    assert (probe.answering, probe.last_ok) == (True, 1008.0)


class Fixed(Informer[DeploymentView]):
    """A cache whose freshness is set by the test."""

    current_as_of: float | None = None  # a plain attribute the test sets

    def __init__(self, current_as_of: float | None) -> None:
        self.current_as_of = current_as_of


class ApiServer(ApiServerProbe):
    """A probe whose facts are set by the test."""

    answering: bool = False  # a plain attribute the test sets

    def __init__(self, last_ok: float | None, answering: bool) -> None:
        self.last_ok, self.answering = last_ok, answering


WALL = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def readiness(caches: list[Fixed], api: ApiServer, now: float = 100.0) -> Readiness:
    clock: Callable[[], float] = lambda: now  # noqa: E731 - a fixed clock
    return Readiness(caches, api, clock=clock, wall_clock=lambda: WALL)


@pytest.mark.parametrize(
    ("caches", "api", "ready", "write", "as_of"),
    [
        # Healthy: ready, writable, as fresh as the last probe.
        ([Fixed(100.0)], ApiServer(98.5, True), "", "", WALL - timedelta(seconds=1.5)),
        # Outage: still ready and answering reads, as of the oldest word; writes refused.
        (
            [Fixed(40.0), Fixed(100.0)],
            ApiServer(39.0, False),
            "",
            "Kubernetes API server unavailable",
            WALL - timedelta(seconds=61),
        ),
        # A cache that never listed: nothing is served.
        (
            [Fixed(None), Fixed(100.0)],
            ApiServer(99.0, True),
            "cache not synced",
            "cache not synced",
            None,
        ),
    ],
)
def test_readiness_rules(
    caches: list[Fixed], api: ApiServer, ready: str, write: str, as_of: datetime | None
) -> None:
    rules = readiness(caches, api)
    assert rules.reason() == ready
    assert rules.write_reason() == write
    assert rules.as_of() == as_of


def test_as_of_follows_the_oldest_stamp() -> None:
    now = [100.0]
    cache, api = Fixed(100.0), ApiServer(98.0, True)
    rules = Readiness([cache], api, clock=lambda: now[0], wall_clock=lambda: WALL)
    assert rules.as_of() == WALL - timedelta(seconds=2)  # the probe's last answer is oldest
    now[0] = cache.current_as_of = 100.5
    api.last_ok = 100.4  # the probe answered again
    assert rules.as_of() == WALL - timedelta(seconds=0.1)
    cache.current_as_of = None  # relisting from scratch: nothing is served
    assert rules.as_of() is None


def test_draining_is_not_ready_but_still_answers_reads() -> None:
    rules = readiness([Fixed(100.0)], ApiServer(99.0, True))
    rules.draining = True
    assert (rules.reason(), rules.reason(for_reads=True)) == ("shutting down", "")


@pytest.mark.asyncio
async def test_readiness_follows_the_read_caches_not_the_reconcilers_hpa_cache(pki: Path) -> None:
    kube = FakeKube()
    kube.fail_paths.add("/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers")
    async with started(pki, kube, namespaces=("apps",)) as running:
        for _ in range(500):  # bounded: the fake answers at once
            if running.app.readiness.ready:
                break
            await asyncio.sleep(0.01)
        assert running.app.readiness.ready
        hpas = [i for i in running.app.informers if "horizontalpodautoscalers" in i.path]
        assert [i.synced for i in hpas] == [False]  # listed by the reconciler, never synced


@pytest.mark.asyncio
async def test_health_turns_serving_once_the_caches_have_synced() -> None:
    cache = Fixed(None)
    ready = readiness([cache], ApiServer(100.0, True))
    servicer = health_aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    publishing = asyncio.create_task(serve_when_ready(ready, servicer, period=0.001))
    await asyncio.sleep(0.01)
    before = await servicer.Check(health_pb2.HealthCheckRequest(service=""), None)

    cache.current_as_of = 100.0  # the first sync
    await asyncio.wait_for(publishing, timeout=5)

    after = await servicer.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert before.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert after.status == health_pb2.HealthCheckResponse.SERVING

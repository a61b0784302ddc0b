"""Two replicant processes: exactly one reconciles; SIGKILL it and the other takes over.

Also: two processes on one host must not share a holder identity; and the
elector against the real Lease API: a release after a renew whose answer was lost still hands
over at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from typing import TYPE_CHECKING

import pytest
from prometheus_client import CollectorRegistry

from e2e.reconciler_fixtures import get_object
from e2e.reconciler_support import (
    create_deployment,
    events,
    identity,
    set_replicas,
    start_replicant,
    wait_cached,
    wait_event,
    wait_reason,
    wait_spec_replicas,
)
from kube import client as kube_client
from kube.leases import LeaseApi, LeaseRecord
from reconciler.leader import ElectionConfig, LeaderElector
from reconciler.metrics import ReconcilerMetrics
from tools.server_process import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl
    from tools.server_process import ServerProcess

LEASE = "replicant-leader"
# Lease 15 s + one 2 s retry period, plus slack for a loaded machine.
FAILOVER_TIMEOUT_S = 40.0


@pytest.fixture
def pair(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, tmp_path: Path
) -> Iterator[dict[str, ServerProcess]]:
    servers: dict[str, ServerProcess] = {}
    try:
        for name in ("a", "b"):
            server = start_replicant(kube_cluster, pki, tmp_path / f"{name}.log", namespace)
            servers[identity(server)] = server
        create_deployment(kubectl, namespace, "web", 1)
        for server in servers.values():
            wait_cached(server, namespace, "web")
        yield servers
    finally:
        for server in servers.values():
            if server.proc.poll() is None:
                server.terminate()


def holder(kubectl: Kubectl, namespace: str) -> str:
    lease = get_object(kubectl, "lease", LEASE, "-n", namespace)
    return "" if lease is None else str(lease["spec"].get("holderIdentity") or "")


def started_reconciling(server: ServerProcess) -> bool:
    return any(e.get("msg") == "reconciler started" for e in server.logs())


def test_exactly_one_process_reconciles_and_the_other_takes_over_after_sigkill(
    pair: dict[str, ServerProcess], kubectl: Kubectl, namespace: str
) -> None:
    eventually("a lease holder", lambda: holder(kubectl, namespace) in pair, FAILOVER_TIMEOUT_S)
    leader = holder(kubectl, namespace)
    (follower,) = set(pair) - {leader}
    set_replicas(pair[follower], namespace, "web", 2)  # every replica serves the API
    wait_spec_replicas(kubectl, namespace, "web", 2)
    kubectl("scale", "deployment", "web", "--replicas=5", "-n", namespace)
    wait_spec_replicas(kubectl, namespace, "web", 2)

    assert wait_event(kubectl, namespace, "DriftCorrected")["reportingInstance"] == leader
    assert started_reconciling(pair[leader])
    assert not started_reconciling(pair[follower])

    pair[leader].proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    pair[leader].proc.wait(timeout=10)
    eventually(
        f"{follower} to hold the lease",
        lambda: holder(kubectl, namespace) == follower,
        FAILOVER_TIMEOUT_S,
    )
    took_over = time.monotonic() - killed_at
    kubectl("scale", "deployment", "web", "--replicas=7", "-n", namespace)
    wait_spec_replicas(kubectl, namespace, "web", 2)
    corrected = time.monotonic() - killed_at

    by = {e["reportingInstance"] for e in events(kubectl, namespace, "DriftCorrected")}
    assert by == {leader, follower}
    assert started_reconciling(pair[follower])
    wait_reason(kubectl, namespace, "web", "Converged")
    print(f"failover: lease taken {took_over:.1f}s after SIGKILL; drift fixed by {corrected:.1f}s")


def test_graceful_shutdown_releases_the_lease_for_a_fast_handover(
    pair: dict[str, ServerProcess], kubectl: Kubectl, namespace: str
) -> None:
    eventually("a lease holder", lambda: holder(kubectl, namespace) in pair, FAILOVER_TIMEOUT_S)
    leader = holder(kubectl, namespace)
    (follower,) = set(pair) - {leader}

    stopped_at = time.monotonic()
    assert pair[leader].terminate() == 0

    eventually(
        f"{follower} to hold the lease",
        lambda: holder(kubectl, namespace) == follower,
        FAILOVER_TIMEOUT_S,
    )
    print(f"handover after SIGTERM: {time.monotonic() - stopped_at:.1f}s (includes gRPC grace)")
    assert any(e.get("msg") == "released lease" for e in pair[leader].logs())


def test_two_processes_on_one_host_elect_exactly_one_leader(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, tmp_path: Path
) -> None:
    servers = []
    try:
        for name in ("first", "second"):
            log = tmp_path / f"{name}.log"
            servers.append(start_replicant(kube_cluster, pki, log, namespace))
        create_deployment(kubectl, namespace, "web", 1)
        for server in servers:
            wait_cached(server, namespace, "web")
        eventually("a lease holder", lambda: bool(holder(kubectl, namespace)), FAILOVER_TIMEOUT_S)
        set_replicas(servers[0], namespace, "web", 3)
        wait_spec_replicas(kubectl, namespace, "web", 3)
        kubectl("scale", "deployment", "web", "--replicas=5", "-n", namespace)
        wait_spec_replicas(kubectl, namespace, "web", 3)
        reporters = {e["reportingInstance"] for e in events(kubectl, namespace, "DriftCorrected")}
        leaders = [
            [e["identity"] for e in s.logs() if e.get("msg") == "became leader"] for s in servers
        ]
        # Before any shutdown: a released Lease is rightly taken over by the survivor.
        reconciling = [started_reconciling(s) for s in servers]
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.terminate()
    assert sorted(map(len, leaders)) == [0, 1]  # exactly one process ever led
    (leader,) = [who for found in leaders for who in found]
    assert reconciling.count(True) == 1
    assert reporters == {leader}
    assert leader.rsplit("_", 1)[0] == socket.gethostname()


class LostAnswers(LeaseApi):
    """The real Lease API, except that the answer to one update is lost after it was applied,
    as when a renew times out on the way back."""

    lose_next_answer = False

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        applied = await super().update(record)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise TimeoutError
        return applied


@pytest.mark.asyncio
async def test_release_after_a_renew_whose_answer_was_lost_hands_over_at_once(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str
) -> None:
    api = await kube_client.connect(str(kube_cluster.kubeconfig))
    leases = LostAnswers(api, namespace, LEASE)
    # A long lease: only a release can empty the holder before this test ends.
    config = ElectionConfig(lease_duration=120, renew_deadline=60, retry_period=0.5)
    metrics = ReconcilerMetrics(CollectorRegistry(), lease=LEASE)
    elector = LeaderElector(leases, "replicant-a", config, metrics=metrics)
    leading = asyncio.Event()

    async def lead() -> None:
        leading.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(elector.run(lead))
    try:
        await asyncio.wait_for(leading.wait(), FAILOVER_TIMEOUT_S)
        leases.lose_next_answer = True
        async with asyncio.timeout(FAILOVER_TIMEOUT_S):
            while leases.lose_next_answer:  # noqa: ASYNC110 - the next renew clears it
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await api.close()

    lease = get_object(kubectl, "lease", LEASE, "-n", namespace)
    assert lease is not None
    spec = lease["spec"]
    assert (spec.get("holderIdentity") or "", spec["leaseDurationSeconds"]) == ("", 1)

"""API server restart in the middle of reconciling: no crash, desired states converge after.

Runs on a scratch control plane of its own, so stopping its API server cannot disturb tests
that share the session cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from e2e.cluster_fixtures import KubeCluster, cluster_cli, kubectl_for
from e2e.reconciler_fixtures import private_cluster
from e2e.reconciler_support import (
    create_deployment,
    probe_failures,
    set_replicas,
    start_replicant,
    wait_cached,
    wait_reason,
    wait_spec_replicas,
)
from tools.server_process import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NAMESPACE = "default"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    with private_cluster(tmp_path_factory.mktemp("reconciler-restart") / "state") as kube:
        yield kube


def test_api_server_restart_mid_reconcile_loses_nothing(
    scratch: KubeCluster, pki: Path, tmp_path: Path
) -> None:
    assert scratch.state_dir is not None
    kubectl = kubectl_for(scratch)
    names = [f"app-{n}" for n in range(5)]
    for name in names:
        create_deployment(kubectl, NAMESPACE, name, 1)
    server = start_replicant(scratch, pki, tmp_path / "server.log", NAMESPACE)
    try:
        for name in names:
            wait_cached(server, NAMESPACE, name)

        # Desired states accepted just before the outage; the reconciler is mid-way through them.
        for n, name in enumerate(names):
            set_replicas(server, NAMESPACE, name, n + 2)
        failures = probe_failures(server)
        cluster_cli("stop-apiserver", scratch.state_dir)
        eventually("outage seen", lambda: probe_failures(server) > failures, 30)
        ready_while_down = server.http("/readyz")[0]  # readiness does not follow the API server
        cluster_cli("start-apiserver", scratch.state_dir)

        for n, name in enumerate(names):
            wait_spec_replicas(kubectl, NAMESPACE, name, n + 2)
            wait_reason(kubectl, NAMESPACE, name, "Converged")
        # The watches resumed: drift after the restart is still set back.
        kubectl("scale", "deployment", names[0], "--replicas=9", "-n", NAMESPACE)
        wait_spec_replicas(kubectl, NAMESPACE, names[0], 2)
        alive = server.proc.poll() is None
    finally:
        exit_code = server.terminate()
    assert ready_while_down == 200
    assert alive
    assert exit_code == 0

"""Lifecycle of the local control plane (tools.cluster): idempotent up, restarting
only the API server, and a down that leaves nothing behind.

These run against a second, scratch cluster in a temporary state dir, so stopping
things never disturbs the session cluster the other tests use. The down test stops
that scratch cluster, so it stays the last test of this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from e2e.cluster_fixtures import (
    KubeCluster,
    cluster_cli,
    run_kubectl,
)
from tools.ci import require_tools
from tools.cluster import process
from tools.cluster.components import ORDER, Ports
from tools.cluster.control import Cluster
from tools.cluster.paths import Layout, bin_dir

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_tools("kubectl", *ORDER)
    cluster = Cluster(Layout(tmp_path_factory.mktemp("scratch-cluster") / "state"))
    cluster_cli("up", cluster.layout.root)
    try:
        yield cluster
    finally:
        cluster_cli("down", cluster.layout.root)  # a no-op once the down test ran


def scratch_kubectl(cluster: Cluster) -> KubeCluster:
    layout = cluster.layout
    return KubeCluster(layout.admin_kubeconfig, bin_dir() / "kubectl", layout.root)


def live_processes_mentioning(needle: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains needle."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


def test_up_on_a_running_cluster_reports_it_and_succeeds(scratch: Cluster) -> None:
    output = cluster_cli("up", scratch.layout.root)

    assert "already running" in output


def test_apiserver_stop_frees_its_port_and_leaves_the_rest_running(scratch: Cluster) -> None:
    port = scratch.ports().apiserver

    cluster_cli("stop-apiserver", scratch.layout.root)

    try:
        assert process.port_is_free(port)
        assert not scratch.apiserver_ready()
        assert [name for name in ORDER if not scratch.running(name)] == ["kube-apiserver"]
    finally:
        cluster_cli("start-apiserver", scratch.layout.root)


def test_apiserver_restart_keeps_its_port_and_stored_objects(scratch: Cluster) -> None:
    kube = scratch_kubectl(scratch)
    run_kubectl(kube, "create", "configmap", "survivor", "-n", "default", "--from-literal=k=v")
    port_before = scratch.ports().apiserver

    cluster_cli("stop-apiserver", scratch.layout.root)
    cluster_cli("start-apiserver", scratch.layout.root)

    assert scratch.ports().apiserver == port_before
    data = run_kubectl(
        kube, "get", "configmap", "survivor", "-n", "default", "-o", "jsonpath={.data.k}"
    )
    assert data.stdout == "v"


def test_down_leaves_no_process_and_frees_every_port(scratch: Cluster) -> None:
    ports = Ports.load(scratch.layout.ports_file)
    assert ports is not None
    state_dir = str(scratch.layout.root)
    assert live_processes_mentioning(state_dir), "precondition: the scratch cluster runs"

    cluster_cli("down", scratch.layout.root)

    assert live_processes_mentioning(state_dir) == []
    assert [port for port in ports.all() if not process.port_is_free(port)] == []
    assert not scratch.layout.root.exists()

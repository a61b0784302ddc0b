"""Fixtures for the real-node tests: a cluster with a kubelet, the e2e image, the chart.

The real node is opt-in: these tests run when REPLICANT_REAL_NODE=1 (`make test-node`)
or CI=true (where `.ci/run` builds the node tools first), and skip otherwise so the
default `make test` on a laptop stays kwok-only and needs no root. Each test module
gets its own cluster in .cache/cluster-node (one real node per machine), brought up
with the same CLI as `make cluster-up NODE=real` and taken down after the module.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from charts import helmtool
from e2e.cluster_fixtures import (
    KubeCluster,
    Kubectl,
    cluster_cli,
    kubectl_for,
)
from tools import devcerts
from tools.ci import running_in_ci, skip_or_fail
from tools.cluster import images
from tools.cluster.control import Cluster
from tools.cluster.paths import REPO_ROOT, Layout, bin_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

STATE_DIR = REPO_ROOT / ".cache" / "cluster-node"
RELEASE = "replicant"
SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=server"
# A Deployment for GetReplicas to read; 0 replicas, so it costs the node nothing.
TARGET = "web"


@dataclass(frozen=True)
class RealCluster:
    kube: KubeCluster
    kubectl: Kubectl
    layout: Layout
    image: images.Built


def real_node_wanted() -> bool:
    return os.environ.get("REPLICANT_REAL_NODE") == "1" or running_in_ci()


def node_tools_missing() -> list[str]:
    names = ("kubelet", "kube-proxy", "containerd", "ctr", "pause", "kube-apiserver", "helm")
    return [name for name in names if not os.access(bin_dir() / name, os.X_OK)]


@pytest.fixture(autouse=True)
def _replicatarget_crd() -> None:
    """Overrides e2e/reconciler_fixtures.py's: that one applies the CRD to the kwok
    cluster (and would start it); these tests apply it to their own (install_chart)."""


@pytest.fixture(scope="session")
def e2e_image(tmp_path_factory: pytest.TempPathFactory) -> images.Built:
    """replicant's e2e image archive (tools/cluster/images.py), built once per session."""
    if not real_node_wanted():
        pytest.skip("real-node tests are opt-in: `make test-node` (or CI=true)")
    if os.geteuid() != 0:
        skip_or_fail("the real node needs root (kubelet, containerd, network namespaces)")
    missing = node_tools_missing()
    if missing:
        skip_or_fail(f"real-node tools missing: {', '.join(missing)} (run `make node-tools`)")
    cache = Path(os.environ.get("REPLICANT_CACHE", Path.home() / ".cache" / "replicant"))
    out = tmp_path_factory.mktemp("image")
    return images.replicant_image(out, cache / "e2e-image", REPO_ROOT / "gen", Path(sys.executable))


@pytest.fixture(scope="module")
def real_cluster(e2e_image: images.Built) -> Iterator[RealCluster]:
    layout = Layout(STATE_DIR)
    started = not Cluster(layout).healthy()
    if started:
        cluster_cli_real_up(layout)
    cluster = Cluster(layout)
    cluster.import_image(e2e_image.archive)
    kube = KubeCluster(layout.admin_kubeconfig, bin_dir() / "kubectl", layout.root)
    try:
        yield RealCluster(kube, kubectl_for(kube), layout, e2e_image)
    finally:
        if started and layout.root.exists():
            cluster_cli("down", layout.root)


def cluster_cli_real_up(layout: Layout) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tools.cluster", "up", "--node", "real",
         "--state-dir", str(layout.root)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"cluster up --node real failed:\n{result.stdout}{result.stderr}")
    return result.stdout


@dataclass(frozen=True)
class Installed:
    namespace: str
    pki: Path
    release: helmtool.Release
    values: dict[str, Any]

    @property
    def server_name(self) -> str:
        """The name the dev server certificate carries for this namespace."""
        return f"{RELEASE}.{self.namespace}.svc"


def chart_values(image: images.Built) -> dict[str, Any]:
    repository, tag = image.name.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        # The dev PKI's client identities (tools/devcerts.py).
        "authorization": {
            "readers": ["spiffe://replicant.dev/client/reader"],
            "writers": ["spiffe://replicant.dev/client/writer"],
        },
    }


def install_chart(cluster: RealCluster, namespace: str, workdir: Path) -> Installed:
    """The chart with its defaults (2 replicas), dev certificates, the e2e image."""
    kubectl = cluster.kubectl
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(helmtool.CRD_FILE))
    kubectl("create", "namespace", namespace)
    kubectl("label", "--overwrite", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    kubectl("create", "deployment", TARGET, f"--image={cluster.image.name}", "--replicas=0",
            "-n", namespace)  # fmt: skip
    pki = workdir / "pki"
    devcerts.generate(pki, (namespace,))
    for secret in helmtool.tls_secret_manifests(RELEASE, namespace, pki):
        kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    release = helmtool.Release(RELEASE, namespace, cluster.kube.kubeconfig)
    values = {**chart_values(cluster.image), **helmtool.api_server_values(cluster.kube.kubeconfig)}
    release.install(values, workdir)
    kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", namespace, "--timeout=3m")
    return Installed(namespace, pki, release, values)


@pytest.fixture(scope="module")
def installed(
    real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    namespace = f"replicant-{secrets.token_hex(3)}"
    try:
        yield install_chart(real_cluster, namespace, tmp_path_factory.mktemp("chart"))
    finally:
        # The chart's ClusterRole and binding are cluster-wide: uninstall, not only delete.
        helmtool.Release(RELEASE, namespace, real_cluster.kube.kubeconfig).helm(
            "uninstall", RELEASE, "--wait", check=False
        )
        real_cluster.kubectl("delete", "namespace", namespace, "--wait=false",
                             "--ignore-not-found")  # fmt: skip


def service_address(cluster: RealCluster, namespace: str) -> str:
    service = json.loads(
        cluster.kubectl("get", "service", RELEASE, "-n", namespace, "-o", "json").stdout
    )
    return f"{service['spec']['clusterIP']}:8443"

"""pytest fixtures that give tests a real Kubernetes API server: `kube_cluster`, `kubectl` and a
throwaway `namespace` (docs/devenv.md, "Tests"). Registered from the repository-root conftest.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tools.ci import require_tools
from tools.cluster.components import ORDER
from tools.cluster.control import Cluster, ClusterError
from tools.cluster.paths import REPO_ROOT, bin_dir, resolve_state_dir
from tools.server_process import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator

CLUSTER_CLI_TIMEOUT_S = 300.0
KUBECTL_TIMEOUT_S = 120.0
NAMESPACE_READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class KubeCluster:
    """How tests reach the cluster: a kubeconfig plus the kubectl to use with it."""

    kubeconfig: Path
    kubectl: Path
    # Set when the cluster is the local control plane (not an external KUBECONFIG).
    state_dir: Path | None


class KubectlError(AssertionError):
    """kubectl exited non-zero; the message has its command line and stderr."""


def cluster_cli(command: str, state_dir: Path) -> str:
    """Run `python -m tools.cluster <command>`: exactly what `make cluster-up` runs.

    A separate process, so the components it starts are not children of pytest.
    """
    result = subprocess.run(
        [sys.executable, "-m", "tools.cluster", command, "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLUSTER_CLI_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise ClusterError(f"tools.cluster {command} failed ({result.returncode}):\n{output}")
    return output


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """$KUBECONFIG's cluster, or the local control plane: a running one is left running, one
    this session had to create is removed at its end."""
    if external := os.environ.get("KUBECONFIG"):
        require_tools("kubectl")
        yield KubeCluster(Path(external), bin_dir() / "kubectl", None)
        return
    require_tools("kubectl", *ORDER)
    layout = resolve_state_dir(None)
    created = not layout.ports_file.exists()
    if not Cluster(layout).healthy():
        cluster_cli("up", layout.root)
    try:
        with pytest.MonkeyPatch.context() as env:
            # Code under test that builds its own client from the environment sees it too.
            env.setenv("KUBECONFIG", str(layout.admin_kubeconfig))
            yield KubeCluster(layout.admin_kubeconfig, bin_dir() / "kubectl", layout.root)
    finally:
        if created:
            cluster_cli("down", layout.root)


def run_kubectl(
    cluster: KubeCluster, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = [str(cluster.kubectl), f"--kubeconfig={cluster.kubeconfig}", *args]
    result = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False
    )
    if check and result.returncode != 0:
        raise KubectlError(
            f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def kubectl_for(cluster: KubeCluster) -> Kubectl:
    """`kubectl("get", "pods", "-n", ns)` against `cluster`; raises KubectlError unless
    check=False."""
    return functools.partial(run_kubectl, cluster)


@pytest.fixture(scope="session")
def kubectl(kube_cluster: KubeCluster) -> Kubectl:
    """`kubectl("get", "pods", "-n", ns)`; raises KubectlError unless check=False."""
    return kubectl_for(kube_cluster)


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return parsed


def namespace_name(test_name: str) -> str:
    """A DNS-1123 label from the test name plus a random suffix."""
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].rstrip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway namespace, usable once its default ServiceAccount exists."""
    name = namespace_name(request.node.name)
    kubectl("create", "namespace", name)

    def has_default_sa() -> bool:
        probe = kubectl("get", "serviceaccount", "default", "-n", name, check=False)
        return probe.returncode == 0

    try:
        eventually(f"ServiceAccount default in {name}", has_default_sa, NAMESPACE_READY_TIMEOUT_S)
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

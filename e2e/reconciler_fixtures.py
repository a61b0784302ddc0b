"""pytest plugin: the ReplicaTarget CRD on the test cluster, and helpers for reconciler e2e tests.

The server now watches ReplicaTargets, so its caches (and readiness) need the CRD. Every test
marked `cluster` gets it installed from the chart's file, the single source of truth; unit tests
never touch a cluster. Registered from the repository-root conftest.py.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

import pytest

from e2e.cluster_fixtures import KubeCluster, cluster_cli, kubectl_for
from tools.ci import require_tools
from tools.cluster.components import ORDER
from tools.cluster.control import Cluster
from tools.cluster.paths import REPO_ROOT, Layout, bin_dir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import Kubectl

CRD_FILE = REPO_ROOT / "charts" / "replicant" / "files" / "replicatargets.replicant.dev.yaml"
CRD_NAME = "replicatargets.replicant.dev"


def ensure_crd(kubectl: Kubectl) -> None:
    """Apply the CRD (if missing or changed) and wait until the API server serves it."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=30s")


@contextlib.contextmanager
def private_cluster(state_dir: Path) -> Iterator[KubeCluster]:
    """A control plane of the test's own, with the CRD, for tests that stop its API server and so
    must not disturb the session cluster other tests share. Stopped and removed on exit."""
    require_tools("kubectl", *ORDER)
    cluster = Cluster(Layout(state_dir))
    cluster_cli("up", cluster.layout.root)
    try:
        kube = KubeCluster(
            cluster.layout.admin_kubeconfig, bin_dir() / "kubectl", cluster.layout.root
        )
        # The server watches ReplicaTargets and is not ready until that cache syncs.
        ensure_crd(kubectl_for(kube))
        yield kube
    finally:
        cluster_cli("down", cluster.layout.root)


_applied_this_session: list[bool] = []


@pytest.fixture(autouse=True)
def _replicatarget_crd(request: pytest.FixtureRequest) -> None:
    """Cluster tests only: apply the CRD once per session (so edits to the file land), then
    re-apply only if it is gone (a chart test may uninstall it)."""
    if request.node.get_closest_marker("cluster") is None:
        return
    kubectl: Kubectl = request.getfixturevalue("kubectl")
    if not _applied_this_session or kubectl("get", "crd", CRD_NAME, check=False).returncode:
        ensure_crd(kubectl)
        _applied_this_session.append(True)


def get_object(kubectl: Kubectl, *args: str) -> dict[str, Any] | None:
    """`kubectl get ... -o json`, or None if it does not exist."""
    result = kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed

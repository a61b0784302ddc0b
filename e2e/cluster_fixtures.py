"""pytest fixtures that give tests a real Kubernetes API server.

Registered as a plugin from the repository-root conftest.py, so every test folder
(e2e/, server/, reconciler/, ...) can ask for them:

- `kube_cluster` (session): the cluster in $KUBECONFIG if set; otherwise the local
  control plane from `tools.cluster`, started if it is not running and stopped at
  the end only if this session started it.
- `kubectl` (session): run the pinned kubectl against that cluster.
- `namespace` (function): a fresh namespace per test, deleted afterwards.

Missing tools skip these tests on a laptop (with the command to fix it), but fail
them when CI=true: a CI run that silently skipped its cluster tests would be green
while testing nothing.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tools.ci import skip_or_fail
from tools.cluster import process
from tools.cluster.control import Cluster, ClusterError, locked
from tools.cluster.paths import REPO_ROOT, Layout, bin_dir, resolve_state_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

CLUSTER_CLI_TIMEOUT_S = 300.0
KUBECTL_TIMEOUT_S = 120.0
NAMESPACE_READY_TIMEOUT_S = 30.0
POLL_S = 0.25


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


def find_kubectl() -> Path | None:
    pinned = bin_dir() / "kubectl"
    if os.access(pinned, os.X_OK):
        return pinned
    found = shutil.which("kubectl")
    return Path(found) if found else None


def local_tools_missing() -> list[str]:
    names = ["etcd", "kwok", "kubectl"]
    names += [f"kube-{c}" for c in ("apiserver", "controller-manager", "scheduler")]
    return [name for name in names if not os.access(bin_dir() / name, os.X_OK)]


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    external = os.environ.get("KUBECONFIG")
    if external:
        kubectl = find_kubectl()
        if kubectl is None:
            skip_or_fail("KUBECONFIG is set but no kubectl found (run `make tools`)")
        yield KubeCluster(Path(external), kubectl, None)
        return
    missing = local_tools_missing()
    if missing:
        skip_or_fail(f"local control-plane tools missing: {', '.join(missing)} (run `make tools`)")
    layout = resolve_state_dir(None)
    fresh = not layout.ports_file.exists()
    join_session(layout)
    try:
        if not Cluster(layout).healthy():
            cluster_cli("up", layout.root)
            if fresh:
                layout.auto_started.touch()
        with pytest.MonkeyPatch.context() as env:
            # Code under test that builds its own client from the environment sees it too.
            env.setenv("KUBECONFIG", str(layout.admin_kubeconfig))
            yield KubeCluster(layout.admin_kubeconfig, bin_dir() / "kubectl", layout.root)
    finally:
        leave_session(layout)


# Several pytest sessions (developers, CI jobs, one engineer's watch loop) may share
# one state dir. Each registers itself; a cluster that a session auto-started is
# stopped by the last session to leave, never under another one's feet. A cluster
# from `make cluster-up` (no auto-started marker) is left running.


def join_session(layout: Layout) -> None:
    me = process.record_of(os.getpid(), sys.executable)
    process.write_record(layout.sessions / f"{os.getpid()}.json", me)


def other_sessions_alive(layout: Layout) -> bool:
    alive = False
    for path in layout.sessions.glob("*.json"):
        record = process.read_record(path)
        if record is not None and process.is_alive(record):
            alive = True
        else:
            path.unlink(missing_ok=True)  # a session that died without leaving
    return alive


def leave_session(layout: Layout) -> None:
    (layout.sessions / f"{os.getpid()}.json").unlink(missing_ok=True)
    if not layout.auto_started.exists():
        return
    with locked(layout):
        if not other_sessions_alive(layout):
            Cluster(layout).down()


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


def wait_until(what: str, predicate: Callable[[], bool], timeout_s: float) -> None:
    """Poll predicate until true, at most timeout_s; fails the test with `what`."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / POLL_S) + 1):
        if predicate():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


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
        wait_until(f"ServiceAccount default in {name}", has_default_sa, NAMESPACE_READY_TIMEOUT_S)
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

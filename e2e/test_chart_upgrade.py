"""`helm upgrade` rolls the server without ever dropping below the desired ready count.

Installs the chart with its defaults (2 replicas, maxSurge 1, maxUnavailable 0), then
upgrades it with a changed value (the log level: the ConfigMap checksum changes, so the
pod template changes) while a poller records the Deployment's ready replicas and the
number of Ready pods. kwok plays the kubelet: it marks new pods Ready and removes
deleted ones, which is enough for the Deployment controller to run the real rollout.
On kind (CI), the same test runs against real pods.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charts import helmtool
from e2e.cluster_fixtures import get_json, skip_or_fail
from tools import devcerts

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2e.cluster_fixtures import KubeCluster, Kubectl

RELEASE = "replicant"
DESIRED = 2
SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=server"
# Upper bound on polls while helm upgrade runs (each poll is two kubectl calls).
MAX_POLLS = 2000
UPGRADE_TIMEOUT_S = 300.0


@dataclass
class ReadySamples:
    """What the poller saw: Deployment readyReplicas and Ready pods, per poll."""

    deployment_ready: list[int] = field(default_factory=list)
    pods_ready: list[int] = field(default_factory=list)

    @property
    def minimum(self) -> int:
        return min(self.deployment_ready + self.pods_ready)


def ready_pods(pods: dict[str, Any]) -> int:
    """Pods that are Ready and not terminating (a terminating pod takes no new traffic)."""
    count = 0
    for pod in pods["items"]:
        conditions = pod.get("status", {}).get("conditions", [])
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        if ready and not pod["metadata"].get("deletionTimestamp"):
            count += 1
    return count


def rollout_complete(deployment: dict[str, Any]) -> bool:
    """What `kubectl rollout status` waits for: only updated, available pods remain."""
    status = deployment["status"]
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == DESIRED
        and status.get("replicas") == DESIRED
        and status.get("availableReplicas") == DESIRED
    )


def template_hashes(kubectl: Kubectl, namespace: str) -> set[str]:
    """pod-template-hash of the pods that are not terminating."""
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", SELECTOR)
    return {
        pod["metadata"]["labels"]["pod-template-hash"]
        for pod in pods["items"]
        if not pod["metadata"].get("deletionTimestamp")
    }


def test_helm_upgrade_keeps_desired_replicas_ready_throughout(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:  # fmt: skip
    if not helmtool.helm_available():
        skip_or_fail(f"{helmtool.helm_binary()} missing (run `make tools`)")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(helmtool.CRD_FILE))
    kubectl("label", "--overwrite", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    pki = tmp_path / "pki"
    devcerts.generate(pki)
    secret = helmtool.tls_secret_manifest(f"{RELEASE}-tls", namespace, pki, "server")
    kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    release = helmtool.Release(RELEASE, namespace, kube_cluster.kubeconfig)
    release.install({}, tmp_path)
    before = template_hashes(kubectl, namespace)

    samples = ReadySamples()
    with tempfile.TemporaryDirectory() as workdir:
        values = helmtool.values_args({"server": {"logLevel": "debug"}}, (), Path(workdir))
        argv = [str(helmtool.helm_binary()), f"--kubeconfig={kube_cluster.kubeconfig}",
                "upgrade", RELEASE, str(helmtool.CHART_DIR), "-n", namespace,
                "--wait", "--timeout", "4m", *values]  # fmt: skip
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as upgrade:  # fmt: skip
            # Helm's --wait returns once the new pods are ready, before the old ReplicaSet is
            # scaled down: keep polling until the Deployment reports the rollout complete.
            for _ in range(MAX_POLLS):
                helm_done = upgrade.poll() is not None
                deployment = get_json(kubectl, "deployment", RELEASE, "-n", namespace)
                pods = get_json(kubectl, "pods", "-n", namespace, "-l", SELECTOR)
                samples.deployment_ready.append(deployment["status"].get("readyReplicas", 0))
                samples.pods_ready.append(ready_pods(pods))
                if helm_done and (upgrade.returncode != 0 or rollout_complete(deployment)):
                    break
            _, stderr = upgrade.communicate(timeout=UPGRADE_TIMEOUT_S)

    after = get_json(kubectl, "deployment", RELEASE, "-n", namespace)
    record_property("min_ready_replicas", samples.minimum)
    record_property("polls", len(samples.deployment_ready))
    print(f"\nhelm upgrade: {len(samples.deployment_ready)} polls, minimum ready seen "
          f"{samples.minimum} (desired {DESIRED})")  # fmt: skip
    assert upgrade.returncode == 0, stderr
    assert rollout_complete(after)
    assert template_hashes(kubectl, namespace).isdisjoint(before), "the pods were not replaced"
    assert samples.minimum >= DESIRED
    release.helm("uninstall", RELEASE, "--wait", check=False)

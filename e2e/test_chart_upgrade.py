"""`helm upgrade` rolls the server without ever dropping below the desired ready count.

Installs the chart with its defaults (2 replicas, maxSurge 1, maxUnavailable 0), then
upgrades it with a changed value (a reader grant: the server's args change, so the
pod template changes) while a poller records the Deployment's ready replicas and the
number of Ready pods. kwok plays the kubelet: it marks new pods Ready and removes
deleted ones, which is enough for the Deployment controller to run the real rollout.
On kind (CI), the same test runs against real pods of replicant:dev, which `make deploy` loaded.

And the CRD: the chart renders it (crds.enabled), so `helm upgrade` carries a schema change
into the cluster, and `helm uninstall` leaves it (and every ReplicaTarget) in place.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from charts import helmtool
from e2e.cluster_fixtures import get_json
from tools import devcerts
from tools.ci import require_tools

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
    """What the poller saw, per poll: the Deployment's readyReplicas and availableReplicas
    (ready for minReadySeconds) and the Ready, non-terminating pods."""

    deployment_ready: list[int] = field(default_factory=list)
    deployment_available: list[int] = field(default_factory=list)
    pods_ready: list[int] = field(default_factory=list)

    @property
    def minimum(self) -> int:
        return min(self.deployment_ready + self.deployment_available + self.pods_ready)

    def summary(self) -> str:
        return (
            f"{len(self.pods_ready)} polls, minimum seen: readyReplicas "
            f"{min(self.deployment_ready)}, availableReplicas {min(self.deployment_available)}, "
            f"Ready pods {min(self.pods_ready)} (desired {DESIRED})"
        )


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


@dataclass(frozen=True)
class UpgradeRun:
    samples: ReadySamples
    returncode: int
    stderr: str
    replaced: bool
    complete: bool


def install_then_upgrade(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, workdir: Path,
    values: dict[str, Any],
) -> UpgradeRun:  # fmt: skip
    """Install with `values`, then `helm upgrade` with a changed grant, polling throughout."""
    require_tools("helm")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(helmtool.CRD_FILE))
    kubectl("label", "--overwrite", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted")  # fmt: skip
    pki = workdir / "pki"
    devcerts.generate(pki)
    for secret in helmtool.tls_secret_manifests(RELEASE, namespace, pki):
        kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    release = helmtool.Release(RELEASE, namespace, kube_cluster.kubeconfig)
    values = {**helmtool.api_server_values(kube_cluster.kubeconfig), **values}
    release.install(values, workdir)
    # Start from a settled Deployment: helm's --wait does not wait for minReadySeconds.
    kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", namespace, "--timeout=3m")
    before = template_hashes(kubectl, namespace)

    samples = ReadySamples()
    changed = {
        **helmtool.DEV_IMAGE, **values,
        "authorization": {**values.get("authorization", {}), "readers": ["upgrade-probe"]},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as valuesdir:
        argv = [str(helmtool.helm_binary()), f"--kubeconfig={kube_cluster.kubeconfig}",
                "upgrade", RELEASE, str(helmtool.CHART_DIR), "-n", namespace,
                "--wait", "--timeout", "4m", "--take-ownership",
                *helmtool.values_args(changed, (), Path(valuesdir))]  # fmt: skip
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as upgrade:  # fmt: skip
            # Helm's --wait returns once the new pods are ready, before the old ReplicaSet is
            # scaled down: keep polling until the Deployment reports the rollout complete.
            for _ in range(MAX_POLLS):
                helm_done = upgrade.poll() is not None
                deployment = get_json(kubectl, "deployment", RELEASE, "-n", namespace)
                pods = get_json(kubectl, "pods", "-n", namespace, "-l", SELECTOR)
                status = deployment["status"]
                samples.deployment_ready.append(status.get("readyReplicas", 0))
                samples.deployment_available.append(status.get("availableReplicas", 0))
                samples.pods_ready.append(ready_pods(pods))
                if helm_done and (upgrade.returncode != 0 or rollout_complete(deployment)):
                    break
            _, stderr = upgrade.communicate(timeout=UPGRADE_TIMEOUT_S)

    after = get_json(kubectl, "deployment", RELEASE, "-n", namespace)
    return UpgradeRun(
        samples=samples,
        returncode=upgrade.returncode,
        stderr=stderr,
        replaced=template_hashes(kubectl, namespace).isdisjoint(before),
        complete=rollout_complete(after),
    )


def test_helm_upgrade_keeps_desired_replicas_ready_throughout(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:  # fmt: skip
    run = install_then_upgrade(kube_cluster, kubectl, namespace, tmp_path, {})

    record_property("min_ready_replicas", run.samples.minimum)
    print(f"\nhelm upgrade (chart defaults): {run.samples.summary()}")
    assert run.returncode == 0, run.stderr
    assert run.complete
    assert run.replaced, "the pods were not replaced"
    assert run.samples.minimum >= DESIRED


def test_poller_sees_the_dip_a_strategy_with_max_unavailable_one_causes(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    """Control: the measurement above can fail. With maxUnavailable 1 an old pod goes before
    its replacement is available (minReadySeconds), which the poller must notice."""
    strategy = {"updateStrategy": {"maxSurge": 0, "maxUnavailable": 1}}

    run = install_then_upgrade(kube_cluster, kubectl, namespace, tmp_path, strategy)

    print(f"\nhelm upgrade (maxUnavailable 1): {run.samples.summary()}")
    assert run.returncode == 0, run.stderr
    assert run.samples.minimum < DESIRED


CRD = "crd/replicatargets.replicant.dev"
# An optional field only the upgraded chart's CRD has.
EXTRA_FIELD = "e2eUpgradeNote"


def chart_with_extra_crd_field(out: Path) -> Path:
    """A copy of the chart whose CRD file has one more optional spec field."""
    chart = out / "replicant"
    shutil.copytree(helmtool.CHART_DIR, chart)
    crd_file = chart / helmtool.CRD_FILE.relative_to(helmtool.CHART_DIR)
    crd = yaml.safe_load(crd_file.read_text())
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"][EXTRA_FIELD] = {"type": "string"}
    crd_file.write_text(yaml.safe_dump(crd))
    return chart


def spec_fields(kubectl: Kubectl) -> set[str]:
    crd = get_json(kubectl, CRD)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return set(schema["properties"]["spec"]["properties"])


def test_helm_upgrade_changes_the_crd_and_uninstall_keeps_it(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    require_tools("helm")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(helmtool.CRD_FILE))
    pki = tmp_path / "pki"
    devcerts.generate(pki)
    for secret in helmtool.tls_secret_manifests(RELEASE, namespace, pki):
        kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    release = helmtool.Release(RELEASE, namespace, kube_cluster.kubeconfig)
    values = helmtool.api_server_values(kube_cluster.kubeconfig)
    release.install(values, tmp_path)
    # As replicant: the chart's admission policy refuses anyone else (the admin too).
    kubectl("apply", f"--as={release.service_account}", "-f", "-", stdin=json.dumps({
        "apiVersion": "replicant.dev/v1alpha1", "kind": "ReplicaTarget",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"deploymentName": "web", "replicas": 2},
    }))  # fmt: skip
    try:
        release.install(values, tmp_path, upgrade=True, chart=chart_with_extra_crd_field(tmp_path))
        upgraded = spec_fields(kubectl)
        release.install(values, tmp_path, upgrade=True)
        restored = spec_fields(kubectl)
        release.helm("uninstall", release.name, "--wait")
        kept = get_json(kubectl, CRD)
        target = get_json(kubectl, "replicatarget", "web", "-n", namespace)
    finally:
        release.helm("uninstall", release.name, "--wait", check=False)
        # Later tests get the CRD exactly as the chart ships it.
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(helmtool.CRD_FILE))

    assert EXTRA_FIELD in upgraded
    assert EXTRA_FIELD not in restored
    assert kept["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert target["spec"]["replicas"] == 2

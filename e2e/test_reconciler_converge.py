"""The reconciler against the real API server: Set converges, drift is set back, each case of
the design (missing, recreated, HPA, target deleted) behaves as specified."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from e2e.reconciler_fixtures import get_object
from e2e.reconciler_support import (
    apply_json,
    create_deployment,
    events,
    reconciled,
    replica_target,
    set_replicas,
    spec_replicas,
    start_replicant,
    wait_cached,
    wait_event,
    wait_reason,
    wait_spec_replicas,
)
from tools import devcerts

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl
    from e2e.server_process import ServerProcess


@pytest.fixture
def server(
    kube_cluster: KubeCluster, namespace: str, pki: Path, tmp_path: Path
) -> Iterator[ServerProcess]:
    proc = start_replicant(kube_cluster, pki, tmp_path / "server.log", namespace)
    try:
        yield proc
    finally:
        assert proc.terminate() == 0


def test_set_replicas_creates_the_target_and_the_deployment_converges(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 1)
    wait_cached(server, namespace, "web")

    desired = set_replicas(server, namespace, "web", 3)

    assert (desired.replicas, desired.requested_by) == (3, devcerts.WRITER_ID)
    assert desired.version
    wait_spec_replicas(kubectl, namespace, "web", 3)
    condition = wait_reason(kubectl, namespace, "web", "Converged")
    target = get_object(kubectl, "rt", "web", "-n", namespace)
    assert target is not None
    assert condition["status"] == "True"
    assert condition["observedGeneration"] == target["metadata"]["generation"]
    assert target["status"]["lastAppliedReplicas"] == 3
    annotations = target["metadata"]["annotations"]
    assert annotations["replicant.dev/requested-by"] == devcerts.WRITER_ID
    assert annotations["replicant.dev/requested-at"].endswith("Z")
    assert events(kubectl, namespace, "Scaled")


def test_kubectl_scale_drift_is_set_back_and_recorded(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 1)
    wait_cached(server, namespace, "web")
    set_replicas(server, namespace, "web", 2)
    wait_reason(kubectl, namespace, "web", "Converged")

    kubectl("scale", "deployment", "web", "--replicas=5", "-n", namespace)

    seconds = wait_spec_replicas(kubectl, namespace, "web", 2)
    event = wait_event(kubectl, namespace, "DriftCorrected")
    assert "5" in event["message"]
    assert event["reportingInstance"] == "replicant-a"
    print(f"drift set back within {seconds:.2f}s of kubectl scale returning")


def test_missing_deployment_is_reported_then_converges_once_it_appears(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply_json(kubectl, replica_target(namespace, "later", 4))

    condition = wait_reason(kubectl, namespace, "later", "DeploymentMissing")
    assert condition["status"] == "False"
    wait_event(kubectl, namespace, "DeploymentMissing")

    create_deployment(kubectl, namespace, "later", 1)

    wait_spec_replicas(kubectl, namespace, "later", 4)
    wait_reason(kubectl, namespace, "later", "Converged")


def test_recreated_deployment_gets_the_desired_count(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 1)
    wait_cached(server, namespace, "web")
    set_replicas(server, namespace, "web", 3)
    wait_reason(kubectl, namespace, "web", "Converged")
    first = get_object(kubectl, "rt", "web", "-n", namespace)
    assert first is not None

    kubectl("delete", "deployment", "web", "-n", namespace, "--wait=true")
    wait_reason(kubectl, namespace, "web", "DeploymentMissing")
    create_deployment(kubectl, namespace, "web", 1)

    wait_spec_replicas(kubectl, namespace, "web", 3)
    wait_event(kubectl, namespace, "DeploymentRecreated")
    new_uid = get_object(kubectl, "deployment", "web", "-n", namespace)
    assert new_uid is not None
    wait_reason(kubectl, namespace, "web", "Converged")
    second = get_object(kubectl, "rt", "web", "-n", namespace)
    assert second is not None
    assert second["status"]["deploymentUID"] == new_uid["metadata"]["uid"]
    assert second["status"]["deploymentUID"] != first["status"]["deploymentUID"]


def test_hpa_on_the_deployment_means_no_scale_writes(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 2)
    wait_cached(server, namespace, "web")
    kubectl("autoscale", "deployment", "web", "--min=2", "--max=3", "-n", namespace)

    set_replicas(server, namespace, "web", 1)

    condition = wait_reason(kubectl, namespace, "web", "AutoscalerPresent")
    assert condition["status"] == "False"
    assert "web" in condition["message"]
    wait_event(kubectl, namespace, "AutoscalerPresent")
    assert spec_replicas(kubectl, namespace, "web") == 2
    assert not events(kubectl, namespace, "Scaled")

    kubectl("delete", "hpa", "web", "-n", namespace)

    wait_spec_replicas(kubectl, namespace, "web", 1)
    wait_reason(kubectl, namespace, "web", "Converged")


def test_deleted_target_leaves_the_deployment_alone(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    for name in ("web", "canary"):
        create_deployment(kubectl, namespace, name, 1)
        wait_cached(server, namespace, name)
    set_replicas(server, namespace, "web", 2)
    wait_reason(kubectl, namespace, "web", "Converged")

    kubectl("delete", "rt", "web", "-n", namespace)
    kubectl("scale", "deployment", "web", "--replicas=4", "-n", namespace)
    # Barrier: a later target converging proves the reconciler has processed events since.
    set_replicas(server, namespace, "canary", 3)
    wait_reason(kubectl, namespace, "canary", "Converged")

    assert reconciled(kubectl, namespace, "web") is None
    assert spec_replicas(kubectl, namespace, "web") == 4
    assert not events(kubectl, namespace, "DriftCorrected")

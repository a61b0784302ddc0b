"""The reconciler against the real API server: Set converges, drift is set back (and a fight
with another writer is held off), each case of the design (missing, recreated, HPA, target
deleted) behaves as specified."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

import grpc
import pytest

from e2e.reconciler_fixtures import get_object
from e2e.reconciler_support import (
    apply_json,
    create_deployment,
    events,
    identity,
    metric,
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
from replicant.v1 import replicant_pb2 as pb
from tools import devcerts
from tools.server_process import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl
    from tools.server_process import ServerProcess


RECONCILES = "replicant_reconcile_total"
LEADER = "replicant_leader_election_master_status"


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
    # Counted just after reconcile returns, so a scrape may be a moment early: poll (bounded).
    eventually(
        "a successful reconcile on /metrics",
        lambda: (
            (metric(server, RECONCILES, controller="replicatarget", result="success") or 0) >= 1
        ),
    )
    assert metric(server, LEADER, name="replicant-leader") == 1


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
    assert event["reportingInstance"] == identity(server)
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


def test_hpa_on_the_deployment_means_no_scale_writes_and_set_is_refused_naming_it(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 2)
    wait_cached(server, namespace, "web")
    kubectl("autoscale", "deployment", "web", "--min=2", "--max=3", "-n", namespace)
    # A target someone wrote with kubectl: the reconciler must leave the count to the HPA.
    apply_json(kubectl, replica_target(namespace, "web", 1))

    condition = wait_reason(kubectl, namespace, "web", "AutoscalerPresent")
    with pytest.raises(grpc.RpcError) as refused:
        set_replicas(server, namespace, "web", 1)

    assert condition["status"] == "False"
    assert "web" in condition["message"]
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "HorizontalPodAutoscaler web" in (refused.value.details() or "")
    wait_event(kubectl, namespace, "AutoscalerPresent")
    assert spec_replicas(kubectl, namespace, "web") == 2
    assert not events(kubectl, namespace, "Scaled")

    kubectl("delete", "hpa", "web", "-n", namespace)

    wait_spec_replicas(kubectl, namespace, "web", 1)
    wait_reason(kubectl, namespace, "web", "Converged")
    eventually("Set accepted once the HPA is gone", lambda: _set_ok(server, namespace, 2))


def _set_ok(server: ServerProcess, namespace: str, replicas: int) -> bool:
    try:
        set_replicas(server, namespace, "web", replicas)
    except grpc.RpcError:
        return False
    return True


def _desired(server: ServerProcess, namespace: str) -> pb.DesiredState:
    request = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=namespace, name="web"))
    with server.channel("reader") as chan:
        response: pb.GetReplicasResponse = server.stub(chan).GetReplicas(request, timeout=5)
    return response.deployment.desired


def test_converged_is_about_the_current_spec_so_waiting_by_version_works(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 1)
    wait_cached(server, namespace, "web")
    set_replicas(server, namespace, "web", 2)
    wait_reason(kubectl, namespace, "web", "Converged")
    eventually("first Set converged", lambda: _desired(server, namespace).reconcile.converged)

    stored = set_replicas(server, namespace, "web", 4)

    # The condition still says True, about the previous spec: that is not convergence.
    assert not stored.reconcile.converged
    assert stored.reconcile.observed_generation < int(stored.version.rpartition(":")[2])
    seen_converged_early = []

    def applied() -> bool:
        desired = _desired(server, namespace)
        if desired.version != stored.version:
            # The cache has not seen the write yet (Get reads the watch cache): the older spec,
            # never a newer one (nobody else writes in this test). Not applied, as the doc says.
            assert desired.version == f"{stored.version.rpartition(':')[0]}:1"
            return False
        if desired.reconcile.converged and spec_replicas(kubectl, namespace, "web") != 4:
            seen_converged_early.append(desired)
        return desired.reconcile.converged

    seconds = eventually("Get says the Set is applied", applied)
    assert seen_converged_early == []
    assert spec_replicas(kubectl, namespace, "web") == 4
    print(f"converged by version {seconds:.2f}s after Set returned")


def test_a_drift_fight_with_another_writer_is_detected_reported_and_backed_off(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 1)
    wait_cached(server, namespace, "web")
    set_replicas(server, namespace, "web", 2)
    wait_reason(kubectl, namespace, "web", "Converged")
    stop = threading.Event()

    def other_writer() -> None:
        # A GitOps tool that wants 5 and re-applies it whenever it differs, bounded in time.
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            if spec_replicas(kubectl, namespace, "web") != 5:
                kubectl("scale", "deployment", "web", "--replicas=5", "-n", namespace)
            stop.wait(0.1)

    writer = threading.Thread(target=other_writer, daemon=True)
    writer.start()
    try:
        started = time.monotonic()
        condition = wait_reason(kubectl, namespace, "web", "ConflictingWriter")
        detected = time.monotonic() - started
        # The writer keeps going; replicant must now leave the count alone.
        time.sleep(5)
        corrections = len(events(kubectl, namespace, "DriftCorrected"))
        held_at = spec_replicas(kubectl, namespace, "web")
    finally:
        stop.set()
        writer.join()

    assert condition["status"] == "False"
    assert "now 5, desired 2" in condition["message"]
    assert corrections == 3
    assert held_at == 5
    assert len(events(kubectl, namespace, "ConflictingWriter")) == 1
    assert events(kubectl, namespace, "ConflictingWriter")[0]["type"] == "Warning"
    print(f"drift fight detected after {corrections} corrections in {detected:.2f}s")


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


@contextlib.contextmanager
def scale_refused_at(kubectl: Kubectl, namespace: str, replicas: int) -> Iterator[None]:
    """An admission policy that refuses scaling to `replicas` in `namespace`: a refusal that only
    a person can lift, from the real API server's admission chain."""
    name = f"refuse-{namespace}"[:253]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
                "resources": ["deployments/scale"],
            }]},
            "validations": [{"expression": f"object.spec.replicas != {replicas}",
                             "message": f"{replicas} replicas are not allowed here"}],
        },
    }  # fmt: skip
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }  # fmt: skip
    for obj in (policy, binding):
        apply_json(kubectl, obj)
    try:
        yield
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name,
                "--ignore-not-found")  # fmt: skip


def test_a_refused_scale_is_terminal_until_the_deployment_changes(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    create_deployment(kubectl, namespace, "web", 1)
    wait_cached(server, namespace, "web")

    def count(result: str) -> float:
        return metric(server, RECONCILES, controller="replicatarget", result=result) or 0

    with scale_refused_at(kubectl, namespace, 13):
        eventually("the scale policy in force", lambda: kubectl(
            "scale", "deployment", "web", "--replicas=13", "--dry-run=server", "-n", namespace,
            check=False).returncode != 0)  # fmt: skip
        set_replicas(server, namespace, "web", 13)
        condition = wait_reason(kubectl, namespace, "web", "ScaleFailed")
        # The event of its own status write wakes the key once more: it finds nothing new.
        eventually("the terminal reconcile and the one after it",
                   lambda: count("terminal") == 1 and count("success") >= 1)  # fmt: skip
        after_refusal = (count("terminal"), count("error"))
        kubectl("annotate", "deployment", "web", "touched=yes", "-n", namespace)
        eventually("a retry once the Deployment changed", lambda: count("terminal") >= 2)

    assert condition["message"].startswith("scale write refused")
    assert after_refusal == (1.0, 0.0)  # no retry with backoff
    assert len(events(kubectl, namespace, "ScaleFailed")) == 1
    set_replicas(server, namespace, "web", 4)
    wait_spec_replicas(kubectl, namespace, "web", 4)
    wait_reason(kubectl, namespace, "web", "Converged")


def test_a_deployment_with_a_253_character_name_gets_its_events(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    name = "w" * 253  # legal for a Deployment; its Events once overflowed the limit
    apply_json(kubectl, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "long"}},
            "template": {"metadata": {"labels": {"app": "long"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    })  # fmt: skip
    wait_cached(server, namespace, name)

    set_replicas(server, namespace, name, 2)

    event = wait_event(kubectl, namespace, "Scaled")
    assert event["involvedObject"]["name"] == name
    assert len(event["metadata"]["name"]) <= 253

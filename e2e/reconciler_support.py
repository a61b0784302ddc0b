"""Shared helpers for the reconciler e2e tests: a replicant process per test, kubectl views."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from e2e.reconciler_fixtures import get_object
from replicant.v1 import replicant_pb2 as pb
from tools import exposition
from tools.server_process import ServerProcess, eventually, start_server

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl

CONVERGE_TIMEOUT_S = 30.0


def start_replicant(
    cluster: KubeCluster,
    pki: Path,
    log: Path,
    namespace: str,
) -> ServerProcess:
    """A server watching only `namespace`, with its leader Lease there too (tests are isolated)."""
    proc = start_server(
        cluster.kubeconfig,
        pki,
        log,
        namespaces=[namespace],
        extra_args=["--leader-election-namespace", namespace],
    )
    eventually("readyz 200", lambda: proc.http("/readyz")[0] == 200)
    return proc


def identity(server: ServerProcess) -> str:
    """The Lease holder identity the server generated (from its "serving" log line)."""
    return str(next(e["identity"] for e in server.logs() if e.get("msg") == "serving"))


def set_replicas(
    server: ServerProcess, namespace: str, name: str, replicas: int, expected_version: str = ""
) -> pb.DesiredState:
    request = pb.SetReplicasRequest(
        ref=pb.DeploymentRef(namespace=namespace, name=name),
        replicas=replicas,
        expected_version=expected_version,
    )
    with server.channel("writer") as chan:
        response: pb.SetReplicasResponse = server.stub(chan).SetReplicas(request, timeout=20)
    return response.desired


def metric(server: ServerProcess, name: str, /, **labels: str) -> float | None:
    """One sample from the server's /metrics, parsed (None if absent)."""
    status, body = server.http("/metrics")
    assert status == 200, body
    return exposition.sample(body, name, **labels)


def probe_failures(server: ServerProcess) -> float:
    """How often the server's API-server probe has failed: growing, an outage is seen."""
    return metric(server, "replicant_apiserver_probe_failures_total") or 0.0


def create_deployment(kubectl: Kubectl, namespace: str, name: str, replicas: int) -> None:
    kubectl(
        "create", "deployment", name, "--image=nginx", f"--replicas={replicas}", "-n", namespace
    )


def wait_cached(server: ServerProcess, namespace: str, name: str) -> None:
    """Until the server's Deployment cache has it (SetReplicas needs that)."""
    request = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=namespace, name=name))

    def cached() -> bool:
        with server.channel("reader") as chan:
            try:
                server.stub(chan).GetReplicas(request, timeout=5)
            except Exception:  # noqa: BLE001 - NOT_FOUND until the watch delivers it
                return False
        return True

    eventually(f"deployment {namespace}/{name} in the cache", cached)


def spec_replicas(kubectl: Kubectl, namespace: str, name: str) -> int | None:
    obj = get_object(kubectl, "deployment", name, "-n", namespace)
    return None if obj is None else int(obj["spec"].get("replicas", 1))


def wait_spec_replicas(kubectl: Kubectl, namespace: str, name: str, replicas: int) -> float:
    return eventually(
        f"deployment {name} spec.replicas == {replicas}",
        lambda: spec_replicas(kubectl, namespace, name) == replicas,
        CONVERGE_TIMEOUT_S,
    )


def reconciled(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    """The ReplicaTarget's Reconciled condition, or None."""
    obj = get_object(kubectl, "replicatargets.replicant.dev", name, "-n", namespace)
    if obj is None:
        return None
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Reconciled":
            found: dict[str, Any] = condition
            return found
    return None


def wait_reason(kubectl: Kubectl, namespace: str, name: str, reason: str) -> dict[str, Any]:
    eventually(
        f"ReplicaTarget {name} Reconciled reason {reason}",
        lambda: (reconciled(kubectl, namespace, name) or {}).get("reason") == reason,
        CONVERGE_TIMEOUT_S,
    )
    condition = reconciled(kubectl, namespace, name)
    assert condition is not None
    return condition


def events(kubectl: Kubectl, namespace: str, reason: str) -> Sequence[dict[str, Any]]:
    """core/v1 Events on ReplicaTargets in the namespace with that reason."""
    raw = kubectl(
        "get", "events", "-n", namespace, "--field-selector",
        f"involvedObject.kind=ReplicaTarget,reason={reason}", "-o", "json",
    ).stdout  # fmt: skip
    items: list[dict[str, Any]] = json.loads(raw)["items"]
    return items


def wait_event(kubectl: Kubectl, namespace: str, reason: str) -> dict[str, Any]:
    eventually(
        f"an Event {reason}", lambda: bool(events(kubectl, namespace, reason)), CONVERGE_TIMEOUT_S
    )
    return events(kubectl, namespace, reason)[-1]


def apply_json(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    kubectl("create", "-f", "-", stdin=json.dumps(obj))


def replica_target(namespace: str, name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "replicant.dev/v1alpha1",
        "kind": "ReplicaTarget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"deploymentName": name, "replicas": replicas},
    }

"""replicant's API against the real local API server: generated client and grpcurl, over mTLS."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

import grpc
import pytest

from replicant.v1 import replicant_pb2 as pb
from tools import devcerts
from tools.cluster.paths import bin_dir
from tools.server_process import ServerProcess, code_of, eventually, start_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl


@pytest.fixture
def server(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, tmp_path: Path
) -> Iterator[ServerProcess]:
    for name, replicas in (("api", 3), ("web", 2), ("worker", 0)):
        kubectl(
            "create", "deployment", name, "--image=nginx", f"--replicas={replicas}", "-n", namespace
        )
    proc = start_server(
        kube_cluster.kubeconfig, pki, tmp_path / "server.log", namespaces=[namespace]
    )
    try:
        eventually("readyz 200", lambda: proc.http("/readyz")[0] == 200)
        yield proc
    finally:
        assert proc.terminate() == 0


def grpcurl(
    server: ServerProcess, who: str | None, *args: str, data: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [str(bin_dir() / "grpcurl"), "-cacert", str(server.pki / "ca.crt")]
    if who:
        argv += ["-cert", str(server.pki / f"{who}.crt"), "-key", str(server.pki / f"{who}.key")]
    if data is not None:
        argv += ["-d", data]
    argv += [f"127.0.0.1:{server.grpc_port}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_get_and_list_via_generated_client(server: ServerProcess, namespace: str) -> None:
    with server.channel("reader") as chan:
        stub = server.stub(chan)
        got = stub.GetReplicas(
            pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=namespace, name="api"))
        )
        first = stub.ListDeployments(pb.ListDeploymentsRequest(namespace=namespace, page_size=2))
        second = stub.ListDeployments(
            pb.ListDeploymentsRequest(
                namespace=namespace, page_size=2, page_token=first.next_page_token
            )
        )
    assert got.deployment.current.spec_replicas == 3
    assert not got.deployment.HasField("desired")
    assert [d.ref.name for d in first.deployments] == ["api", "web"]
    assert [d.ref.name for d in second.deployments] == ["worker"]
    assert second.next_page_token == ""


def test_set_replicas_returns_the_accepted_desired_state(
    server: ServerProcess, namespace: str
) -> None:
    request = pb.SetReplicasRequest(
        ref=pb.DeploymentRef(namespace=namespace, name="api"), replicas=4
    )
    with server.channel("writer") as chan:
        response = server.stub(chan).SetReplicas(request, timeout=30)
    assert response.desired.replicas == 4
    assert response.desired.requested_by == devcerts.WRITER_ID
    assert response.desired.version != ""


@pytest.mark.parametrize(
    ("who", "method", "body", "expected"),
    [
        (
            "reader",
            "SetReplicas",
            {"ref": {"namespace": "NS", "name": "api"}, "replicas": 1},
            "PERMISSION_DENIED",
        ),
        ("nobody", "GetReplicas", {"ref": {"namespace": "NS", "name": "api"}}, "PERMISSION_DENIED"),
        (
            "reader",
            "GetReplicas",
            {"ref": {"namespace": "NS", "name": "Bad_Name"}},
            "INVALID_ARGUMENT",
        ),
        ("reader", "GetReplicas", {"ref": {"namespace": "NS", "name": "missing"}}, "NOT_FOUND"),
        ("reader", "GetReplicas", {"ref": {"namespace": "other-ns", "name": "api"}}, "NOT_FOUND"),
        (
            "writer",
            "SetReplicas",
            {"ref": {"namespace": "NS", "name": "api"}, "replicas": -1},
            "INVALID_ARGUMENT",
        ),
        (
            "writer",
            "SetReplicas",
            {"ref": {"namespace": "NS", "name": "api"}, "replicas": 1001},
            "INVALID_ARGUMENT",
        ),
        # No count at all (grpcurl body, old client, zero-dropping JSON mapper): not a scale to 0.
        ("writer", "SetReplicas", {"ref": {"namespace": "NS", "name": "api"}}, "INVALID_ARGUMENT"),
        (
            "writer",
            "SetReplicas",
            {"ref": {"namespace": "NS", "name": "missing"}, "replicas": 1},
            "NOT_FOUND",
        ),
    ],
)
def test_unhappy_calls_get_the_right_code(
    server: ServerProcess,
    namespace: str,
    who: str,
    method: str,
    body: dict[str, object],
    expected: str,
) -> None:
    data = json.dumps(body).replace('"NS"', json.dumps(namespace))
    result = grpcurl(server, who, f"replicant.v1.ReplicaService/{method}", data=data)
    assert result.returncode != 0
    assert f"Code: {''.join(w.capitalize() for w in expected.split('_'))}" in result.stderr
    assert server.proc.poll() is None  # no crash


def test_grpcurl_lists_services_and_calls_methods_via_reflection(
    server: ServerProcess, namespace: str
) -> None:
    services = grpcurl(server, "reader", "list")
    get = grpcurl(
        server, "reader", "replicant.v1.ReplicaService/GetReplicas",
        data=json.dumps({"ref": {"namespace": namespace, "name": "web"}}),
    )  # fmt: skip
    listing = grpcurl(
        server, "reader", "replicant.v1.ReplicaService/ListDeployments",
        data=json.dumps({"namespace": namespace}),
    )  # fmt: skip
    # gRPC health follows /readyz within one publish period.
    eventually(
        "health SERVING",
        lambda: '"SERVING"' in grpcurl(server, "nobody", "grpc.health.v1.Health/Check").stdout,
    )
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) >= {
        "replicant.v1.ReplicaService", "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }  # fmt: skip
    assert json.loads(get.stdout)["deployment"]["current"]["spec_replicas"] == 2
    assert [d["ref"]["name"] for d in json.loads(listing.stdout)["deployments"]] == [
        "api",
        "web",
        "worker",
    ]


def served_symbols() -> list[str]:
    """Every service and top-level message of replicant, health and reflection."""
    from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]
    from grpc_reflection.v1alpha import reflection_pb2  # type: ignore[import-untyped]

    symbols = []
    for file in (pb.DESCRIPTOR, health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR):
        for service in file.services_by_name.values():
            symbols.append(service.full_name)
        symbols += [m.full_name for m in file.message_types_by_name.values()]
    return symbols


def test_grpcurl_describes_every_service_and_message(server: ServerProcess) -> None:
    symbols = served_symbols()
    failed = {}
    for symbol in symbols:
        result = grpcurl(server, "nobody", "describe", symbol)
        if result.returncode != 0 or f"{symbol} is a " not in result.stdout:
            failed[symbol] = result.stderr.strip() or result.stdout.strip()
    service = grpcurl(server, "nobody", "describe", "replicant.v1.ReplicaService")
    assert not failed
    # The service's description shows every method's signature.
    assert "rpc SetReplicas ( .replicant.v1.SetReplicasRequest )" in service.stdout
    assert len(symbols) > 20  # the three services and all their messages


@pytest.mark.parametrize("who", [None, "untrusted"])
def test_grpcurl_without_a_trusted_client_certificate_is_refused(
    server: ServerProcess, who: str | None
) -> None:
    result = grpcurl(server, who, "list")
    assert result.returncode != 0
    assert server.proc.poll() is None


def test_reads_follow_scaling_through_the_watch(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("scale", "deployment", "web", "--replicas=5", "-n", namespace)
    kubectl("delete", "deployment", "worker", "-n", namespace)
    request = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=namespace, name="web"))
    gone = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=namespace, name="worker"))
    with server.channel("reader") as chan:
        stub = server.stub(chan)
        eventually(
            "scale visible", lambda: stub.GetReplicas(request).deployment.current.spec_replicas == 5
        )
        eventually(
            "delete visible",
            lambda: code_of(lambda: stub.GetReplicas(gone)) == grpc.StatusCode.NOT_FOUND,
        )


ADMISSION_POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [replicant.dev]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE]
        resources: [replicatargets]
  validations:
    - expression: object.spec.replicas <= 10
      message: at most 10 replicas here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {namespace}}}
"""


def test_an_admission_policy_refusal_is_failed_precondition_naming_the_policy(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    """Issue 23 item 7: a ValidatingAdmissionPolicy denial (422, or 403 for a webhook) was
    INTERNAL, like replicant's own missing RBAC; it is the cluster's rule, so the caller hears
    FAILED_PRECONDITION with the policy's name and nothing of its message."""
    name = f"cap-{namespace}"
    kubectl("apply", "-f", "-", stdin=ADMISSION_POLICY.format(name=name, namespace=namespace))
    ref = pb.DeploymentRef(namespace=namespace, name="web")
    try:
        with server.channel("writer") as chan:
            stub = server.stub(chan)
            refused: list[grpc.RpcError] = []
            over = iter(range(11, 1000))  # a new count each try: a real change to admit

            def denied() -> bool:  # the API server loads the policy within a few seconds
                try:
                    request = pb.SetReplicasRequest(ref=ref, replicas=next(over))
                    stub.SetReplicas(request, timeout=30)
                except grpc.RpcError as err:
                    refused.append(err)
                    return err.code() == grpc.StatusCode.FAILED_PRECONDITION
                return False

            eventually("the policy refuses SetReplicas", denied)
            allowed = stub.SetReplicas(pb.SetReplicasRequest(ref=ref, replicas=5), timeout=30)
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name)
    details = refused[-1].details() or ""
    assert f"'{name}'" in details
    assert "at most 10" not in details
    assert allowed.desired.replicas == 5

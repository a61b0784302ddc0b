"""The server process under stress: API server outage and recovery, and SIGTERM under load.

The outage test stops kube-apiserver, so it runs against a scratch control plane of its own
(like e2e/test_cluster_lifecycle.py) and never disturbs the session cluster other tests use.
The rules it checks are docs/design.md's: reads answer from the warm cache with their age, writes
are refused, and readiness stays.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest

from e2e.cluster_fixtures import cluster_cli, run_kubectl
from e2e.reconciler_fixtures import private_cluster
from e2e.reconciler_support import probe_failures
from replicant.v1 import replicant_pb2 as pb
from tools.server_process import eventually, start_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from google.protobuf.timestamp_pb2 import Timestamp

    from e2e.cluster_fixtures import KubeCluster, Kubectl
    from replicant.v1.replicant_pb2_grpc import ReplicaServiceStub


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    with private_cluster(tmp_path_factory.mktemp("server-outage") / "state") as kube:
        yield kube


def health(server_channel: grpc.Channel, service: str = "") -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

    try:
        reply = health_pb2_grpc.HealthStub(server_channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    except grpc.RpcError:
        return "ERROR"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def get_code(stub: object, request: pb.GetReplicasRequest) -> grpc.StatusCode:
    try:
        stub.GetReplicas(request, timeout=5)  # type: ignore[attr-defined]
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def age_s(as_of: Timestamp) -> float:
    return (datetime.now(UTC) - as_of.ToDatetime(UTC)).total_seconds()


def fully_serving(chan: grpc.Channel, stub: ReplicaServiceStub, ref: pb.DeploymentRef) -> bool:
    """Every health check SERVING and reads fresh again (the watch caught up)."""
    checks = [health(chan, s) for s in ("", "replicant.v1.ReplicaService")]
    try:
        fresh = age_s(stub.GetReplicas(pb.GetReplicasRequest(ref=ref), timeout=5).as_of) < 3
    except grpc.RpcError:  # not synced yet, at start
        return False
    return checks == ["SERVING"] * 2 and fresh


def test_api_server_outage_keeps_reads_answering_with_their_age_and_refuses_writes(
    scratch: KubeCluster, pki: Path, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    assert scratch.state_dir is not None
    run_kubectl(scratch, "create", "deployment", "app", "--image=nginx", "-n", "default")
    server = start_server(scratch.kubeconfig, pki, tmp_path / "server.log")
    ref = pb.DeploymentRef(namespace="default", name="app")
    get = pb.GetReplicasRequest(ref=ref)
    try:
        with server.channel("writer") as chan:  # writers are readers too
            stub = server.stub(chan)
            eventually("SERVING", lambda: fully_serving(chan, stub, ref))

            failures = probe_failures(server)
            cluster_cli("stop-apiserver", scratch.state_dir)
            eventually("outage seen", lambda: probe_failures(server) > failures)
            first = stub.GetReplicas(get, timeout=5)
            first_age = age_s(first.as_of)
            time.sleep(3)
            listing = stub.ListDeployments(
                pb.ListDeploymentsRequest(namespace="default"), timeout=5
            )
            second = stub.GetReplicas(get, timeout=5)
            second_age = age_s(second.as_of)
            overall = health(chan), health(chan, "replicant.v1.ReplicaService")
            readyz = server.http("/readyz")[0]
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as refused:
                stub.SetReplicas(pb.SetReplicasRequest(ref=ref, replicas=2), timeout=10)
            set_seconds = time.monotonic() - started

            cluster_cli("start-apiserver", scratch.state_dir)  # returns once its /readyz is 200
            recovery = eventually("fully SERVING again", lambda: fully_serving(chan, stub, ref), 60)
            after = stub.SetReplicas(pb.SetReplicasRequest(ref=ref, replicas=2), timeout=10)
        pid_alive = server.proc.poll() is None
    finally:
        exit_code = server.terminate()
    # The measured figure, for the record (no timed assertion): `pytest -s` prints it.
    record_property("recovery_s", round(recovery, 2))
    print(f"outage: Set refused in {set_seconds:.3f}s; fully SERVING {recovery:.2f}s after return")
    assert first.deployment.current.spec_replicas == 1  # answered from the warm cache
    assert [d.ref.name for d in listing.deployments] == ["app"]
    assert second_age >= first_age + 3  # the age grows: as_of stays at the last word heard
    assert abs(second.as_of.ToDatetime(UTC) - first.as_of.ToDatetime(UTC)).total_seconds() < 0.01
    assert overall == ("SERVING", "SERVING")  # readiness keeps the replica in the Service
    assert readyz == 200
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert after.desired.replicas == 2
    assert pid_alive
    assert exit_code == 0


def test_sigterm_during_a_stream_of_calls_fails_no_call_that_had_started(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, tmp_path: Path
) -> None:
    kubectl("create", "deployment", "app", "--image=nginx", "-n", namespace)
    server = start_server(
        kube_cluster.kubeconfig, pki, tmp_path / "server.log", namespaces=[namespace]
    )
    request = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=namespace, name="app"))
    eventually("ready", lambda: server.http("/readyz")[0] == 200)
    results: list[grpc.StatusCode] = []
    lock = threading.Lock()
    stop = threading.Event()

    def caller() -> None:
        with server.channel("reader") as chan:
            stub = server.stub(chan)
            for _ in range(100_000):  # bounded; ends when the server is gone
                code = get_code(stub, request)
                with lock:
                    results.append(code)
                if stop.is_set() and code != grpc.StatusCode.OK:
                    return

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    eventually("calls flowing", lambda: len(results) > 200)
    exit_code = server.terminate()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    logs = server.logs()
    # Every call the server started succeeded: one "rpc" line each, all OK.
    codes = [e["code"] for e in logs if e.get("msg") == "rpc"]
    served = codes.count("OK")
    assert served == len(codes) > 0
    # Calls refused once the server stopped accepting fail with UNAVAILABLE, or CANCELLED when
    # grpc core resets a stream it never handed to the application (it is not in the server log).
    assert set(results) <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    }
    assert results.count(grpc.StatusCode.OK) == served
    assert exit_code == 0

"""The server process under stress: API server outage and recovery, and SIGTERM under load.

The outage test stops kube-apiserver, so it runs against a scratch control plane of its own
(like e2e/test_cluster_lifecycle.py) and never disturbs the session cluster other tests use.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import grpc
import pytest

from e2e.cluster_fixtures import cluster_cli, run_kubectl
from e2e.reconciler_fixtures import private_cluster
from e2e.server_process import eventually, start_server
from replicant.v1 import replicant_pb2 as pb

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    with private_cluster(tmp_path_factory.mktemp("server-outage") / "state") as kube:
        yield kube


def health(server_channel: grpc.Channel) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

    try:
        reply = health_pb2_grpc.HealthStub(server_channel).Check(
            health_pb2.HealthCheckRequest(), timeout=2
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


def test_api_server_outage_turns_health_off_and_recovery_needs_no_restart(
    scratch: KubeCluster, pki: Path, tmp_path: Path
) -> None:
    assert scratch.state_dir is not None
    run_kubectl(scratch, "create", "deployment", "app", "--image=nginx", "-n", "default")
    server = start_server(scratch.kubeconfig, pki, tmp_path / "server.log")
    request = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace="default", name="app"))
    try:
        with server.channel("reader") as chan:
            stub = server.stub(chan)
            eventually("SERVING", lambda: health(chan) == "SERVING")
            assert get_code(stub, request) == grpc.StatusCode.OK

            cluster_cli("stop-apiserver", scratch.state_dir)
            went_down = eventually("NOT_SERVING", lambda: health(chan) == "NOT_SERVING", 30)
            read_while_down = get_code(stub, request)
            readyz_while_down = server.http("/readyz")[0]

            cluster_cli("start-apiserver", scratch.state_dir)
            eventually("SERVING again", lambda: health(chan) == "SERVING", 60)
            read_after = get_code(stub, request)
        pid_alive = server.proc.poll() is None
    finally:
        exit_code = server.terminate()
    # The probe window is 7 s (2 s interval, 2 s timeout): NOT_SERVING comes within ~10 s.
    assert went_down <= 12, f"took {went_down:.1f}s"
    assert (read_while_down, readyz_while_down) == (grpc.StatusCode.UNAVAILABLE, 503)
    assert read_after == grpc.StatusCode.OK
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
    server_side = [e for e in server.logs() if e.get("msg") == "rpc"]
    # Every call the server started (logged) succeeded; refused ones never started.
    assert server_side
    assert {e["code"] for e in server_side} == {"OK"}
    # Calls refused once the server stopped accepting fail with UNAVAILABLE, or CANCELLED when
    # grpc core resets a stream it never handed to the application (it is not in the server log).
    assert set(results) <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    }
    assert results.count(grpc.StatusCode.OK) == len(server_side)
    assert exit_code == 0

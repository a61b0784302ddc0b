"""More than one serving process on one port (README, "More than one core").

grpc binds its port with SO_REUSEPORT, so processes started with the same --grpc-port (and their own
--http-port) all accept on it and the kernel spreads connections over them. Each keeps its own
caches and watches; the default --identity is unique per process, so exactly one holds the Lease.
"""

from __future__ import annotations

import functools
import socket
from typing import TYPE_CHECKING

import grpc

from e2e.reconciler_support import create_deployment, metric
from replicant.v1 import replicant_pb2 as pb
from replicant.v1 import replicant_pb2_grpc
from tools.server_process import client_credentials, eventually, start_server

if TYPE_CHECKING:
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl
    from tools.server_process import ServerProcess

PROCESSES = 2
# Each call on a connection of its own: all of them landing on one process has odds of 2 in 2^20.
CONNECTIONS = 20
READS = "replicant_grpc_requests_total"
LEADER = "replicant_leader_election_master_status"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def ready(server: ServerProcess) -> bool:
    return server.http("/readyz")[0] == 200


def leading(server: ServerProcess) -> float:
    return metric(server, LEADER, name="replicant-leader") or 0


def reads(server: ServerProcess) -> float:
    return metric(server, READS, method="replicant.v1.ReplicaService/GetReplicas", code="OK") or 0


def test_processes_on_one_port_share_the_connections_and_one_holds_the_lease(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, tmp_path: Path
) -> None:
    create_deployment(kubectl, namespace, "api", 1)
    port = free_port()
    servers: list[ServerProcess] = []
    try:
        for i in range(PROCESSES):
            servers.append(
                start_server(
                    kube_cluster.kubeconfig,
                    pki,
                    tmp_path / f"server-{i}.log",
                    namespaces=[namespace],
                    extra_args=["--grpc-port", str(port), "--leader-election-namespace", namespace],
                )
            )
        for server in servers:
            eventually("readyz 200", functools.partial(ready, server))
        assert [server.grpc_port for server in servers] == [port] * PROCESSES
        assert len({server.http_port for server in servers}) == PROCESSES

        request = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=namespace, name="api"))
        for _ in range(CONNECTIONS):
            # A subchannel pool of its own: without it, channels to one target share a connection.
            with grpc.secure_channel(
                f"127.0.0.1:{port}",
                client_credentials(pki, "reader"),
                options=[("grpc.use_local_subchannel_pool", 1)],
            ) as chan:
                stub = replicant_pb2_grpc.ReplicaServiceStub(chan)
                assert stub.GetReplicas(request, timeout=10).deployment.current.spec_replicas == 1

        served = [reads(server) for server in servers]
        assert sum(served) == CONNECTIONS
        assert all(served), f"one process served every connection: {served}"
        one_leader = [0] * (PROCESSES - 1) + [1]
        eventually("one leader", lambda: sorted(map(leading, servers)) == one_leader)
    finally:
        for server in servers:
            assert server.terminate() == 0

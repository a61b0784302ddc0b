"""On a real node the chart's pods run for real: probes, in-cluster config, Service traffic.

What kwok cannot show: the kubelet runs the startup and readiness probes, the server
builds its Kubernetes client from the ServiceAccount token and reaches the API server
through the `kubernetes` Service with the chart's RBAC only, and a client outside the
pods reaches them through their Service (kube-proxy). Also: nothing the node runs
listens beyond this machine's addresses, and no name lookup leaves the machine.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from e2e.cluster_fixtures import wait_until
from e2e.realnode.conftest import (
    RELEASE,
    SELECTOR,
    TARGET,
    Installed,
    RealCluster,
    service_address,
)
from replicant.v1 import replicant_pb2, replicant_pb2_grpc
from tools.cluster import node, process

if TYPE_CHECKING:
    from collections.abc import Callable

# Where a listening socket of the node may be bound: loopback, the bridge, unix sockets.
ALLOWED_LISTEN = {"127.0.0.1", "::1", node.NODE_IP}


def pods(cluster: RealCluster, namespace: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl("get", "pods", "-n", namespace, "-l", SELECTOR, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def exec_python(cluster: RealCluster, namespace: str, pod: str, code: str) -> str:
    """Run Python in the server container (the image has no shell, but has python)."""
    result = cluster.kubectl(
        "exec", "-n", namespace, pod, "-c", "replicant", "--",
        "/usr/bin/python3.11", "-c", code,
    )  # fmt: skip
    return result.stdout


def test_server_pods_turn_ready_on_the_real_node_through_their_probes(
    real_cluster: RealCluster, installed: Installed
) -> None:
    running = pods(real_cluster, installed.namespace)

    assert len(running) == 2
    for pod in running:
        assert pod["spec"]["nodeName"] == node.NODE_NAME
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"], status
        assert status["started"], status
        assert status["restartCount"] == 0, status
        assert status["imageID"], "containerd reports the image it ran"
        assert pod["status"]["podIP"].startswith(node.POD_SUBNET.rsplit(".", 2)[0])


def test_pods_run_as_65532_with_a_read_only_root_filesystem(
    real_cluster: RealCluster, installed: Installed
) -> None:
    pod = pods(real_cluster, installed.namespace)[0]["metadata"]["name"]
    code = (
        "import os\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n open('/app/x', 'w')\nexcept OSError as e:\n print(e.errno)\n"
    )

    out = exec_python(real_cluster, installed.namespace, pod, code).split()

    assert out[:2] == ["65532", "65532"]
    assert out[2] == "30"  # EROFS


def test_kubernetes_service_points_at_the_api_server_on_the_node_address(
    real_cluster: RealCluster, installed: Installed
) -> None:
    slices = json.loads(
        real_cluster.kubectl(
            "get", "endpointslices", "-n", "default",
            "-l", "kubernetes.io/service-name=kubernetes", "-o", "json",
        ).stdout
    )  # fmt: skip
    addresses = {a for s in slices["items"] for e in s["endpoints"] for a in e["addresses"]}
    pod = pods(real_cluster, installed.namespace)[0]["metadata"]["name"]

    env = exec_python(
        real_cluster, installed.namespace, pod,
        "import os; print(os.environ['KUBERNETES_SERVICE_HOST'])",
    ).strip()  # fmt: skip

    assert addresses == {node.NODE_IP}
    assert env == "10.0.0.1"  # the Service's ClusterIP, not the node address


def test_writes_through_the_service_scale_the_deployment_with_the_charts_rbac(
    real_cluster: RealCluster, installed: Installed
) -> None:
    """SetReplicas through the Service: the pods' in-cluster client (ServiceAccount token,
    chart RBAC) writes the ReplicaTarget and the leader's reconciler scales the Deployment.
    2 replicas of the e2e image, then back to 0."""
    credentials = grpc.ssl_channel_credentials(
        (installed.pki / "ca.crt").read_bytes(),
        (installed.pki / "writer.key").read_bytes(),
        (installed.pki / "writer.crt").read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", installed.server_name)]
    ref = replicant_pb2.DeploymentRef(namespace=installed.namespace, name=TARGET)
    address = service_address(real_cluster, installed.namespace)
    with grpc.secure_channel(address, credentials, options=options) as channel:
        stub = replicant_pb2_grpc.ReplicaServiceStub(channel)
        stub.SetReplicas(replicant_pb2.SetReplicasRequest(ref=ref, replicas=1), timeout=10)

        def scaled() -> bool:
            deployment = json.loads(
                real_cluster.kubectl(
                    "get", "deployment", TARGET, "-n", installed.namespace, "-o", "json"
                ).stdout
            )
            return int(deployment["spec"].get("replicas", 0)) == 1

        wait_until("the reconciler scaled the Deployment to 1", scaled, 60)
        stub.SetReplicas(replicant_pb2.SetReplicasRequest(ref=ref, replicas=0), timeout=10)
        answer = stub.GetReplicas(replicant_pb2.GetReplicasRequest(ref=ref), timeout=10)

    assert answer.deployment.desired.replicas == 0
    forbidden = real_cluster.kubectl(
        "auth", "can-i", "create", "pods", "-n", installed.namespace,
        f"--as=system:serviceaccount:{installed.namespace}:{RELEASE}", check=False,
    )  # fmt: skip
    assert forbidden.stdout.strip() == "no"


def test_pods_resolve_names_only_inside_their_own_network_namespace(
    real_cluster: RealCluster, installed: Installed
) -> None:
    """No cluster DNS and kubelet resolvConf "": the only nameserver a pod gets is
    loopback, its own network namespace, where nothing answers; no query leaves."""
    pod = pods(real_cluster, installed.namespace)[0]["metadata"]["name"]

    resolv = exec_python(
        real_cluster, installed.namespace, pod, "print(open('/etc/resolv.conf').read())"
    )

    servers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert all(ipaddress.ip_address(server).is_loopback for server in servers), resolv


def _listening_sockets(pids: set[int]) -> dict[str, set[int]]:
    """Local address -> pids, for every TCP LISTEN and UDP socket those pids hold, read
    from the host network namespace's /proc/net tables."""
    inodes: dict[str, int] = {}
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                target = str(fd.readlink()) if fd.is_symlink() else ""
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    found: dict[str, set[int]] = {}
    for table, listen_state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", None), ("udp6", None)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if (listen_state and fields[3] != listen_state) or fields[9] not in inodes:
                continue
            found.setdefault(_address(fields[1]), set()).add(inodes[fields[9]])
    return found


def _address(hex_address: str) -> str:
    raw, _ = hex_address.split(":")
    data = bytes.fromhex(raw)
    if len(data) == 4:
        return ".".join(str(b) for b in reversed(data))
    words = [data[i : i + 4][::-1] for i in range(0, 16, 4)]
    joined = b"".join(words)
    if joined[:12] == b"\0" * 10 + b"\xff\xff":
        return ".".join(str(b) for b in joined[12:])
    return str(ipaddress.IPv6Address(joined))


def test_nothing_the_node_runs_listens_beyond_this_machines_addresses(
    real_cluster: RealCluster, installed: Installed,
    record_property: Callable[[str, object], None],
) -> None:  # fmt: skip
    pids = set(node.leftover_shims(node.NodeLayout.of(real_cluster.layout)))
    for record_file in real_cluster.layout.pids.glob("*.json"):
        record = process.read_record(record_file)
        if record is not None and process.is_alive(record):
            pids.add(record.pid)
    time.sleep(0.5)

    listening = _listening_sockets(pids)

    record_property("listening", sorted(listening))
    assert listening, "expected the API server and kubelet sockets"
    assert set(listening) <= ALLOWED_LISTEN, listening

"""Command lines and kubeconfigs for each control-plane component.

Everything listens on 127.0.0.1 on ports picked at first cluster-up and kept in the
state directory, so stopping and starting one component (the API server, in other
engineers' resilience tests) brings it back on the same address.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tools import devcerts

if TYPE_CHECKING:
    from pathlib import Path

    from tools.cluster.paths import Layout

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"
# Start order; stop runs in reverse.
ORDER = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK)

CLUSTER_NAME = "replicant-local"
FAKE_NODE = "kwok-node-0"
# Only ever written into API objects (Service and pod IPs); nothing routes them.
SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

# The PKI, made fresh per state directory at cluster-up (tools/devcerts.py), so no key
# is ever committed or shared.
CA_NAME = "ca"
SERVER_NAME = "apiserver"
SA_KEY_NAME = "service-account"
VALID_DAYS = 365
# Names the API server is reached by: loopback for us, the in-cluster names so a
# certificate check from a (fake) pod's point of view would also pass.
SERVER_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
              "kubernetes.default.svc.cluster.local")  # fmt: skip
SERVER_IPS = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate authenticates as (CN = user, O = groups)."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = ClientIdentity("admin", "replicant-admin", ("system:masters",))
# kwok rewrites node and pod status of every node it manages; the default RBAC
# roles have nothing that narrow, so it runs as a cluster admin (local use only).
CLIENTS = {
    "admin": ADMIN,
    CONTROLLER_MANAGER: ClientIdentity(CONTROLLER_MANAGER, "system:kube-controller-manager"),
    SCHEDULER: ClientIdentity(SCHEDULER, "system:kube-scheduler"),
    KWOK: ClientIdentity(KWOK, "kwok-controller", ("system:masters",)),
}


def ensure_pki(pki: Path) -> bool:
    """Create the PKI unless it exists; True when it was created now.

    The service-account public key is written last, so its presence means a complete
    set; a half-made set (interrupted run) is simply made again.
    """
    if (pki / f"{SA_KEY_NAME}.pub").exists():
        return False
    devcerts.make_ca(pki, CA_NAME, "replicant-local-ca", days=VALID_DAYS)
    devcerts.issue(pki, pki, SERVER_NAME, ca=CA_NAME, cn=APISERVER, dns=SERVER_DNS,
                   ips=SERVER_IPS, usages=devcerts.SERVER_AUTH, days=VALID_DAYS)  # fmt: skip
    for client in CLIENTS.values():
        devcerts.issue(pki, pki, client.file_stem, ca=CA_NAME, cn=client.user,
                       organizations=client.groups, days=VALID_DAYS)  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    devcerts.write_key(pki / f"{SA_KEY_NAME}.key", key)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (pki / f"{SA_KEY_NAME}.pub").write_bytes(public)
    return True


@dataclass(frozen=True)
class Ports:
    """Loopback ports of one cluster."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    def all(self) -> list[int]:
        return list(asdict(self).values())

    def for_component(self, name: str) -> list[int]:
        return {
            ETCD: [self.etcd_client, self.etcd_peer],
            APISERVER: [self.apiserver],
            CONTROLLER_MANAGER: [self.controller_manager],
            SCHEDULER: [self.scheduler],
        }.get(name, [])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Ports | None:
        try:
            data = json.loads(path.read_text())
            return cls(**{key: int(value) for key, value in data.items()})
        except (OSError, ValueError, TypeError):
            return None


def apiserver_url(ports: Ports) -> str:
    return f"https://127.0.0.1:{ports.apiserver}"


def _pki_file(layout: Layout, name: str) -> str:
    return str(layout.pki / name)


def etcd_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(binary),
        "--name=replicant",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=replicant={peer}",
        "--initial-cluster-state=new",
        # A throwaway dev store: skipping fsync makes cluster-up and tests much faster.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    sa_key = _pki_file(layout, f"{SA_KEY_NAME}.key")
    sa_pub = _pki_file(layout, f"{SA_KEY_NAME}.pub")
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={_pki_file(layout, SERVER_NAME + '.crt')}",
        f"--tls-private-key-file={_pki_file(layout, SERVER_NAME + '.key')}",
        f"--client-ca-file={_pki_file(layout, CA_NAME + '.crt')}",
        "--authorization-mode=Node,RBAC",
        # As kubeadm and kind set it: privileged pods are then governed by Pod Security
        # Admission (namespace labels), like on the clusters replicant is deployed to.
        "--allow-privileged=true",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={sa_pub}",
        f"--service-account-signing-key-file={sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The default reconciler would publish 127.0.0.1 as the `kubernetes` Service
        # endpoint, which endpoint validation rejects; nothing in-cluster needs it.
        "--endpoint-reconciler-type=none",
        # On SIGTERM, end open watches (controllers, kwok) after 2 s instead of
        # holding the process for the 60 s request timeout: tests stop and start the
        # API server mid-run and want it gone promptly.
        "--shutdown-watch-termination-grace-period=2s",
        "--profiling=false",
    ]


def controller_manager_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig_for(CONTROLLER_MANAGER)}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        # One instance: leader election would only delay start-up by a lease period.
        "--leader-elect=false",
        # Each controller gets its own ServiceAccount token, signed via the API
        # server's TokenRequest, as in a real cluster.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={_pki_file(layout, SA_KEY_NAME + '.key')}",
        f"--root-ca-file={_pki_file(layout, CA_NAME + '.crt')}",
        f"--cluster-signing-cert-file={_pki_file(layout, CA_NAME + '.crt')}",
        f"--cluster-signing-key-file={_pki_file(layout, CA_NAME + '.key')}",
        # kwok's heartbeat stage updates node status every 20-45 s and kwok renews no
        # node lease, so allow more than the default before marking the node NotReady.
        "--node-monitor-grace-period=2m",
        # v=2 logs every ReplicaSet scale-up/down, so a slow rollout in a test can be
        # told apart from a slow scheduler or kwok by reading logs/.
        "--v=2",
        "--profiling=false",
    ]


def scheduler_argv(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig_for(SCHEDULER)}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        "--leader-elect=false",
        "--v=2",  # logs each binding decision (see the controller manager's --v)
        "--profiling=false",
    ]


def kwok_argv(binary: Path, layout: Layout, stages: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={layout.kubeconfig_for(KWOK)}",
        f"--config={stages}",
        "--manage-all-nodes=true",
        f"--cidr={POD_CIDR}",
        "--node-ip=127.0.0.1",
    ]


def _b64(path: Path) -> str:
    """Base64 of a PEM file, as kubeconfig's *-data fields want it."""
    return base64.b64encode(path.read_bytes()).decode("ascii")


def kubeconfig_text(server: str, layout: Layout, client: ClientIdentity) -> str:
    """A self-contained kubeconfig (certificates inlined) for one client identity."""
    ca = _b64(layout.pki / f"{CA_NAME}.crt")
    cert = _b64(layout.pki / f"{client.file_stem}.crt")
    key = _b64(layout.pki / f"{client.file_stem}.key")
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {CLUSTER_NAME}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {client.user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {CLUSTER_NAME}
  context:
    cluster: {CLUSTER_NAME}
    user: {client.user}
current-context: {CLUSTER_NAME}
"""


def write_kubeconfigs(layout: Layout, ports: Ports) -> None:
    """One kubeconfig per client: the admin's, and one per component."""
    server = apiserver_url(ports)
    for component, client in CLIENTS.items():
        path = layout.admin_kubeconfig if client is ADMIN else layout.kubeconfig_for(component)
        path.write_text(kubeconfig_text(server, layout, client))
        path.chmod(0o600)


def fake_node_manifest() -> dict[str, object]:
    """The node kwok pretends to run; untainted so ordinary Deployments land on it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": FAKE_NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": FAKE_NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
    }

"""One real node for the local control plane: containerd, kubelet and kube-proxy.

Opt-in (`make cluster-up NODE=real`, or `up --node real`): kwok stays the fast default.
The node needs root (mounts, network namespaces, cgroups) and changes the host in
known, recorded ways that `down` undoes:

- a bridge (BRIDGE, NODE_IP) that is the node's address, the API server's bind
  address and the pods' gateway, plus a route that keeps Service IPs on it;
- kube-proxy's nftables tables, the kubelet's iptables canary chains;
- mounts (overlay rootfs, netns, secrets) and cgroups (/kubepods) below the state dir;
- sysctls the kubelet sets (vm.overcommit_memory, kernel.panic, ...), restored;
- pod log links in /var/log/containers, which the kubelet cannot be told to move.

Nothing listens beyond this machine's addresses: the API server and the kubelet on
NODE_IP, health and metrics ports on 127.0.0.1, containerd on a unix socket. Pods
get an empty resolv.conf and the kubelet and API server use IPs only, so no DNS query
leaves the machine. One real node per machine: its nftables table and bridge name
are fixed, so a second `up --node real` refuses while the first one runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tools.cluster import pki

if TYPE_CHECKING:
    from tools.cluster.paths import Layout

CONTAINERD = "containerd"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"

NODE_NAME = "replicant-node"
BRIDGE = "rpl0"
NODE_IP = "10.213.0.1"
POD_SUBNET = "10.213.0.0/24"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
RUNC = "/usr/sbin/runc"  # Debian's runc

KUBELET_CLIENT = pki.ClientIdentity("node", f"system:node:{NODE_NAME}", ("system:nodes",))
KUBE_PROXY_CLIENT = pki.ClientIdentity("kube-proxy", "system:kube-proxy")
# The API server's identity towards the kubelet (logs, exec, port-forward).
APISERVER_KUBELET_CLIENT = pki.ClientIdentity(
    "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
)
CLIENTS = (KUBELET_CLIENT, KUBE_PROXY_CLIENT, APISERVER_KUBELET_CLIENT)

# Host-wide settings the node's components may change; recorded at up, put back at down.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
)
KUBE_PROXY_NFT_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))
IPTABLES_TABLES = ("filter", "nat", "mangle")
CONTAINER_LOGS_DIR = Path("/var/log/containers")
# The shims' sockets: containerd wants at most 42 characters, too short for a path
# below the state dir. Fixed, as there is one real node per machine; down removes it.
SHIM_SOCKET_DIR = Path("/run/replicant-node")
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"


class NodeError(RuntimeError):
    """The host cannot run the real node, or cleaning it up failed."""


@dataclass(frozen=True)
class NodePorts:
    """Ports of the node's components (the kubelet's on NODE_IP, the rest loopback)."""

    kubelet: int
    kubelet_healthz: int
    kube_proxy_healthz: int
    kube_proxy_metrics: int

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__) + "\n")

    @classmethod
    def load(cls, path: Path) -> NodePorts | None:
        try:
            return cls(**{k: int(v) for k, v in json.loads(path.read_text()).items()})
        except (OSError, ValueError, TypeError):
            return None


@dataclass(frozen=True)
class NodeLayout:
    """The node's files, all below the cluster's state dir."""

    root: Path

    @classmethod
    def of(cls, layout: Layout) -> NodeLayout:
        return cls(layout.root / "node")

    @property
    def marker(self) -> Path:
        """Present: this cluster runs a real node (down and status read it)."""
        return self.root / "host.json"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def containerd_dir(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.containerd_dir / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet-config.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy-config.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def images(self) -> Path:
        return self.root / "images"


# -- host checks and changes --------------------------------------------------


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result


def preflight() -> None:
    """Fail before touching the host if the real node cannot run here."""
    if os.geteuid() != 0:
        raise NodeError("the real node needs root (mounts, network namespaces, cgroups)")
    missing = [
        path
        for path in (RUNC, f"{CNI_BIN_DIR}/bridge", f"{CNI_BIN_DIR}/host-local", "/usr/sbin/nft")
        if not os.access(path, os.X_OK)
    ]
    if missing:
        raise NodeError(f"missing {missing}; run `make node-tools` (tools/install.sh --node)")
    if bridge_exists():
        raise NodeError(
            f"interface {BRIDGE} exists: another real-node cluster runs on this machine "
            "(one at a time); `make cluster-down` it first"
        )


def bridge_exists() -> bool:
    return Path(f"/sys/class/net/{BRIDGE}").exists()


def read_sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            values[name] = Path("/proc/sys", name).read_text().strip()
    return values


def _iptables_state() -> dict[str, bool]:
    """Which iptables (nft backend) tables exist now, so down removes only new ones."""
    listed = _run(["nft", "list", "tables"], check=False).stdout
    return {
        f"{family} {table}": f"table {family} {table}" in listed
        for family in ("ip", "ip6")
        for table in IPTABLES_TABLES
    }


def setup_host(node: NodeLayout) -> None:
    """Record the host's state, then make the bridge the node runs on."""
    node.root.mkdir(parents=True, exist_ok=True)
    record = {
        "sysctls": read_sysctls(),
        "iptables_tables": _iptables_state(),
        "kubepods_existed": (CGROUP_ROOT / "memory" / KUBEPODS).exists()
        or (CGROUP_ROOT / KUBEPODS).exists(),
        "container_logs_existed": CONTAINER_LOGS_DIR.exists(),
    }
    node.marker.write_text(json.dumps(record, indent=2) + "\n")
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])


def add_service_route(service_cidr: str) -> None:
    """Service IPs without endpoints stay on the bridge instead of taking the default
    route out of the machine."""
    _run(["ip", "route", "replace", service_cidr, "dev", BRIDGE, "src", NODE_IP])


def read_host_record(node: NodeLayout) -> dict[str, object]:
    try:
        data: dict[str, object] = json.loads(node.marker.read_text())
    except (OSError, ValueError):
        return {}
    return data


# -- component configuration --------------------------------------------------


def containerd_config(node: NodeLayout, pause_image: str) -> str:
    """containerd 2.x config (version 4): every path below the state dir, no TCP."""
    d = node.containerd_dir
    return f"""version = 4
root = "{d}/root"
state = "{d}/state"
# Plugins that would write outside the state dir or open another socket.
disabled_plugins = [
  "io.containerd.image-verifier.v1.bindir",
  "io.containerd.internal.v1.opt",
  "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
]

[plugins."io.containerd.server.v1.grpc"]
  address = "{node.containerd_socket}"

[plugins."io.containerd.server.v1.ttrpc"]
  address = "{node.containerd_socket}.ttrpc"

[plugins."io.containerd.server.v1.debug"]
  address = ""

[plugins."io.containerd.server.v1.metrics"]
  address = ""

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{SHIM_SOCKET_DIR}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{pause_image}"

[plugins."io.containerd.cri.v1.runtime"]
  # root here may lack CAP_SYS_RESOURCE: runc must not lower the sandbox's oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        Root = "{d}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{node.cni_conf_dir}"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  # kubectl exec/logs streams: loopback only, behind the kubelet.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def cni_config(node: NodeLayout) -> str:
    """The pods' network: a veth per pod on BRIDGE (made by setup_host with NODE_IP, so
    the plugin neither adds the gateway address nor turns on IP forwarding) and a
    default route to NODE_IP; no masquerade, no port mapping, so no iptables rules."""
    config = {
        "cniVersion": "1.0.0",
        "name": "replicant",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(node.root / "cni" / "ipam"),
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0", "gw": NODE_IP}],
                },
            },
            {"type": "loopback"},
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def kubelet_config(node: NodeLayout, layout: Layout, ports: NodePorts) -> str:
    ca = layout.pki / f"{pki.CA_NAME}.crt"
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
port: {ports.kubelet}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {ports.kubelet_healthz}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://{node.containerd_socket}
# Hosts with cgroup v1 (or hybrid) still run; no systemd here, so cgroupfs.
failCgroupV1: false
cgroupDriver: cgroupfs
# No cluster DNS and an empty host resolv.conf for pods: nothing resolves names, so
# no query can leave the machine.
resolvConf: ""
clusterDomain: cluster.local
podLogsDir: {node.pod_logs}
# The images are imported, never pulled: image GC must not delete them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# A shared development machine: evict only when it is really out of room.
evictionHard:
  memory.available: 200Mi
  nodefs.available: 2%
  imagefs.available: 2%
  nodefs.inodesFree: 2%
failSwapOn: false
maxPods: 40
rotateCertificates: false
serverTLSBootstrap: false
enableProfilingHandler: false
enableDebuggingHandlers: true
"""


def kube_proxy_config(ports: NodePorts, kubeconfig: Path) -> str:
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
# nftables: every rule in kube-proxy's own table, which down deletes whole.
mode: nftables
hostnameOverride: {NODE_NAME}
clientConnection:
  kubeconfig: {kubeconfig}
clusterCIDR: {POD_SUBNET}
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:{ports.kube_proxy_healthz}
metricsBindAddress: 127.0.0.1:{ports.kube_proxy_metrics}
nodePortAddresses: ["{NODE_IP}/32"]
# 0: leave the host's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
"""


def containerd_argv(binary: Path, node: NodeLayout) -> list[str]:
    return [str(binary), "--config", str(node.containerd_config), "--log-level", "warn"]


def kubelet_argv(binary: Path, node: NodeLayout, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--config={node.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={node.kubelet_dir}",
        f"--cert-dir={node.kubelet_dir / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ]


def kube_proxy_argv(binary: Path, node: NodeLayout) -> list[str]:
    return [str(binary), f"--config={node.kube_proxy_config}", "--v=1"]


def write_configs(node: NodeLayout, layout: Layout, ports: NodePorts, pause_image: str) -> None:
    for folder in (node.containerd_dir, node.cni_conf_dir, node.kubelet_dir, node.pod_logs):
        folder.mkdir(parents=True, exist_ok=True)
    node.containerd_config.write_text(containerd_config(node, pause_image))
    (node.cni_conf_dir / "10-replicant.conflist").write_text(cni_config(node))
    node.kubelet_config.write_text(kubelet_config(node, layout, ports))
    node.kube_proxy_config.write_text(kube_proxy_config(ports, layout.kubeconfig_for(KUBE_PROXY)))


# -- images ------------------------------------------------------------------------


def ctr(binary: Path, node: NodeLayout, *args: str, check: bool = True) -> str:
    argv = [str(binary), "--address", str(node.containerd_socket), "-n", "k8s.io", *args]
    return _run(argv, check=check).stdout


def import_image(binary: Path, node: NodeLayout, archive: Path) -> None:
    ctr(binary, node, "images", "import", "--no-unpack=false", str(archive))


# -- teardown ------------------------------------------------------------------------


def kill_containers(binary: Path, node: NodeLayout) -> None:
    """SIGKILL every task containerd runs, then delete tasks and containers."""
    with contextlib.suppress(NodeError):
        ids = ctr(binary, node, "tasks", "ls", "-q").split()
        for task in ids:
            ctr(binary, node, "tasks", "kill", "-a", "-s", "SIGKILL", task, check=False)
        for task in ids:
            ctr(binary, node, "tasks", "delete", "-f", task, check=False)


def leftover_shims(node: NodeLayout) -> list[int]:
    """Shim processes of this containerd (they outlive it by design)."""
    needle = str(node.containerd_socket).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            if b"containerd-shim" in cmdline and needle in cmdline:
                pids.append(int(entry.name))
    return pids


def mounts_below(root: Path) -> list[str]:
    """Mount points at or below root, deepest first."""
    prefix = str(root.resolve())
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_all(root: Path) -> list[str]:
    """Unmount (lazily if busy) everything below root; returns what stays mounted."""
    for point in mounts_below(root):
        if _run(["umount", point], check=False).returncode != 0:
            _run(["umount", "-l", point], check=False)
    return mounts_below(root)


def remove_cgroups(record: dict[str, object]) -> None:
    """rmdir the kubelet's /kubepods tree in every hierarchy, if up made it."""
    if record.get("kubepods_existed"):
        return
    for top in [CGROUP_ROOT / KUBEPODS, *CGROUP_ROOT.glob(f"*/{KUBEPODS}")]:
        if not top.is_dir():
            continue
        for folder in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def kube_chains() -> list[tuple[str, str, str]]:
    """(command, table, chain) of every KUBE-* iptables chain (the kubelet's canaries)."""
    chains = []
    for command in ("iptables", "ip6tables"):
        if shutil.which(command) is None:
            continue
        for table in IPTABLES_TABLES:
            listed = _run([command, "-t", table, "-S"], check=False).stdout
            for chain in re.findall(r"^-N (KUBE-\S+)$", listed, re.M):
                chains.append((command, table, chain))
    return chains


def _remove_jumps_to_kube_chains() -> None:
    """Rules in built-in chains that jump to a KUBE-* chain (the kubelet's KUBE-FIREWALL
    from INPUT and OUTPUT), so the chains themselves can be deleted."""
    for command in ("iptables", "ip6tables"):
        if shutil.which(command) is None:
            continue
        for table in IPTABLES_TABLES:
            listed = _run([command, "-t", table, "-S"], check=False).stdout
            for line in listed.splitlines():
                parts = shlex.split(line)
                if parts[:1] != ["-A"] or parts[1].startswith("KUBE-") or "-j" not in parts:
                    continue
                if parts[parts.index("-j") + 1].startswith("KUBE-"):
                    _run([command, "-t", table, "-D", *parts[1:]], check=False)


def remove_network(record: dict[str, object]) -> None:
    for family, table in KUBE_PROXY_NFT_TABLES:
        _run(["nft", "delete", "table", family, table], check=False)
    _remove_jumps_to_kube_chains()
    for command, table, chain in kube_chains():
        _run([command, "-t", table, "-F", chain], check=False)
    for command, table, chain in kube_chains():
        _run([command, "-t", table, "-X", chain], check=False)
    existed = record.get("iptables_tables", {})
    if isinstance(existed, dict):
        for key, was_there in existed.items():
            family, table = key.split()
            if not was_there and _iptables_table_is_empty(family, table):
                _run(["nft", "delete", "table", family, table], check=False)
    if bridge_exists():
        _run(["ip", "link", "delete", BRIDGE])


def _iptables_table_is_empty(family: str, table: str) -> bool:
    """Only the built-in chains, no rule, every policy ACCEPT: what iptables-nft makes
    on first use, so deleting it changes nothing but the listing."""
    command = "iptables" if family == "ip" else "ip6tables"
    if shutil.which(command) is None:
        return False
    listed = _run([command, "-t", table, "-S"], check=False)
    lines = listed.stdout.split("\n")
    return listed.returncode == 0 and all(
        not line or (line.startswith("-P ") and line.endswith(" ACCEPT")) for line in lines
    )


def restore_sysctls(record: dict[str, object]) -> dict[str, tuple[str, str]]:
    """Put back what changed; returns {name: (was, found)} for what was restored."""
    before = record.get("sysctls", {})
    restored: dict[str, tuple[str, str]] = {}
    if not isinstance(before, dict):
        return restored
    now = read_sysctls()
    for name, value in before.items():
        if now.get(name) != value:
            with contextlib.suppress(OSError):
                Path("/proc/sys", name).write_text(str(value))
                restored[name] = (str(value), now.get(name, "?"))
    return restored


def remove_shim_sockets() -> None:
    shutil.rmtree(SHIM_SOCKET_DIR, ignore_errors=True)


def remove_container_log_links(node: NodeLayout, record: dict[str, object]) -> None:
    if not CONTAINER_LOGS_DIR.is_dir():
        return
    prefix = str(node.pod_logs)
    for link in CONTAINER_LOGS_DIR.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(prefix):
                link.unlink()
    if not record.get("container_logs_existed"):
        with contextlib.suppress(OSError):
            CONTAINER_LOGS_DIR.rmdir()

"""`cluster-down` of a real-node cluster leaves nothing of its own behind.

Brings up its own real-node cluster, runs a pod (so there are shims, mounts, a veth,
cgroups and pod logs), takes it down with the same command as `make cluster-down`,
and checks the host: no process, interface, nftables table, iptables chain, mount,
cgroup or log link of the node remains, and the sysctls the kubelet changed are back.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from e2e.cluster_fixtures import KubeCluster, cluster_cli, kubectl_for
from e2e.realnode.conftest import STATE_DIR, cluster_cli_real_up
from tools.cluster import images, node
from tools.cluster.paths import Layout, bin_dir


def links() -> set[str]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    out = subprocess.run([ip, "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def netfilter_listing() -> str:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    return subprocess.run([nft, "list", "ruleset"], capture_output=True, text=True,
                          check=False).stdout  # fmt: skip


def test_cluster_down_removes_every_process_interface_chain_and_mount(
    e2e_image: images.Built,
) -> None:
    del e2e_image  # only for its opt-in and root checks
    layout = Layout(STATE_DIR)
    if layout.root.exists():  # start from a machine without the real node
        cluster_cli("down", layout.root)
    links_before, sysctls_before = links(), node.read_sysctls()
    kubepods_before = any(Path("/sys/fs/cgroup").glob("*/kubepods"))
    cluster_cli_real_up(layout)
    kube = KubeCluster(layout.admin_kubeconfig, bin_dir() / "kubectl", layout.root)
    kubectl = kubectl_for(kube)
    nl = node.NodeLayout.of(layout)
    pause = next(
        name
        for name in node.ctr(bin_dir() / "ctr", nl, "images", "ls", "-q").split()
        if name.startswith(images.PAUSE_NAME)
    )
    kubectl("create", "deployment", "sleeper", f"--image={pause}")
    kubectl("rollout", "status", "deployment/sleeper", "--timeout=2m")
    assert node.mounts_below(layout.root), "a running pod has mounts below the state dir"
    assert links() - links_before >= {node.BRIDGE}

    cluster_cli("down", layout.root)

    assert not layout.root.exists()
    assert processes_mentioning(str(layout.root)) == []
    assert node.mounts_below(layout.root) == []
    assert links() == links_before
    rules = netfilter_listing()
    assert "kube-proxy" not in rules
    assert not re.search(r"KUBE-|CNI-", rules), rules
    assert node.read_sysctls() == sysctls_before
    assert any(Path("/sys/fs/cgroup").glob("*/kubepods")) == kubepods_before

"""Where the local control plane keeps its binaries, state, certificates and logs.

One frozen value object so every command (up, down, stop-apiserver, ...) and the
pytest fixtures agree on the layout of a state directory without re-deriving it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".cache" / "cluster"
DEFAULT_BIN_DIR = REPO_ROOT / ".cache" / "bin"


def bin_dir() -> Path:
    """The stable symlink folder `make tools` fills (override: REPLICANT_BIN)."""
    return Path(os.environ.get("REPLICANT_BIN", str(DEFAULT_BIN_DIR)))


@dataclass(frozen=True)
class Layout:
    """Files of one cluster, all under `root` so removing it removes the cluster."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd-data"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def kubeconfig_for(self, component: str) -> Path:
        return self.root / f"{component}.kubeconfig"

    def log_for(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pid_for(self, component: str) -> Path:
        return self.pids / f"{component}.json"

    def make_dirs(self) -> None:
        for folder in (self.root, self.pki, self.logs, self.pids, self.etcd_data):
            folder.mkdir(parents=True, exist_ok=True)
        # etcd refuses a data dir readable by others.
        self.etcd_data.chmod(0o700)
        self.pki.chmod(0o700)


def resolve_state_dir(explicit: str | None) -> Layout:
    """--state-dir beats REPLICANT_CLUSTER_DIR beats <repo>/.cache/cluster."""
    raw = explicit or os.environ.get("REPLICANT_CLUSTER_DIR") or str(DEFAULT_STATE_DIR)
    return Layout(Path(raw).resolve())

"""Bring the local control plane up and down, whole or one component at a time.

`up` is "make it so": it starts whatever is not running (so it is idempotent, and it
also restarts a crashed component after reporting its log tail) and returns once the
API server is ready, a ServiceAccount exists (the controller manager works) and
kwok's fake node is Ready. `down` stops only processes recorded in the state
directory, waits for their ports to be free, and removes the state.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tools.cluster import api, components, process
from tools.cluster.components import (
    APISERVER,
    CONTROLLER_MANAGER,
    ETCD,
    KWOK,
    ORDER,
    SCHEDULER,
    Ports,
)
from tools.cluster.paths import Layout, bin_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

ETCD_READY_TIMEOUT_S = 30.0
APISERVER_READY_TIMEOUT_S = 90.0
COMPONENT_READY_TIMEOUT_S = 60.0
POLL_S = 0.2


class ClusterError(RuntimeError):
    """Something the user has to look at; the message says what and where."""


def say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


@dataclass
class Cluster:
    """One cluster's state directory plus the binaries that run it."""

    layout: Layout
    binaries: Path = field(default_factory=bin_dir)
    started_at: float = field(default_factory=time.monotonic)
    # -- paths and records -------------------------------------------------

    def binary(self, name: str) -> Path:
        path = self.binaries / name
        if not os.access(path, os.X_OK):
            raise ClusterError(f"{path} is missing; run `make tools` first")
        return path

    def kwok_stages(self) -> Path:
        """The stage config `make tools` extracted next to the pinned kwok binary."""
        stages = self.binary(KWOK).resolve().parent / "stages.yaml"
        if not stages.is_file():
            raise ClusterError(f"{stages} is missing; run `make tools` again")
        return stages

    def record(self, name: str) -> process.PidRecord | None:
        return process.read_record(self.layout.pid_for(name))

    def running(self, name: str) -> bool:
        record = self.record(name)
        return record is not None and process.is_alive(record)

    def ports(self) -> Ports:
        ports = Ports.load(self.layout.ports_file)
        if ports is None:
            raise ClusterError(f"no cluster in {self.layout.root} (run `make cluster-up`)")
        return ports

    def api(self, path: str, method: str = "GET", body: object = None) -> tuple[int, str]:
        """One call to the API server as the admin client."""
        pki = self.layout.pki
        tls = ssl.create_default_context(cafile=str(pki / f"{components.CA_NAME}.crt"))
        admin = components.ADMIN.file_stem
        tls.load_cert_chain(str(pki / f"{admin}.crt"), str(pki / f"{admin}.key"))
        return api.request(components.apiserver_url(self.ports()) + path, tls, method, body)

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started_at:.1f}s"

    # -- starting ------------------------------------------------------------

    def argv(self, name: str) -> list[str]:
        if name == KWOK:
            return components.kwok_argv(self.binary(KWOK), self.layout, self.kwok_stages())
        build = {
            ETCD: components.etcd_argv,
            APISERVER: components.apiserver_argv,
            CONTROLLER_MANAGER: components.controller_manager_argv,
            SCHEDULER: components.scheduler_argv,
        }[name]
        return build(self.binary(name), self.layout, self.ports())

    def start(self, name: str) -> None:
        """Start one component unless it runs; refuses if its port is taken."""
        if self.running(name):
            return
        busy = [port for port in self.ports().for_component(name) if not process.port_is_free(port)]
        if busy:
            raise ClusterError(f"cannot start {name}: port(s) {busy} on 127.0.0.1 are in use")
        record = process.start(
            self.argv(name), self.layout.log_for(name), self.layout.pid_for(name)
        )
        say(f"started {name} (pid {record.pid}, log {self.layout.log_for(name)})")

    def wait_for(
        self, what: str, ready: Callable[[], bool], watch: tuple[str, ...], timeout_s: float
    ) -> None:
        """Poll `ready` until true; fail fast if a watched component exits."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            for name in watch:
                if not self.running(name):
                    log = self.layout.log_for(name)
                    raise ClusterError(
                        f"{name} exited; last lines of {log}:\n{process.log_tail(log)}"
                    )
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"{what} not ready after {timeout_s:.0f}s; logs in {self.layout.logs}"
                )
            time.sleep(POLL_S)
        say(f"{what} ready after {self.elapsed()}")

    # -- readiness probes -------------------------------------------------

    def etcd_ready(self) -> bool:
        return api.request(f"http://127.0.0.1:{self.ports().etcd_client}/health")[0] == 200

    def apiserver_ready(self) -> bool:
        """GET /readyz is 200 (every post-start hook done, etcd reachable)."""
        return self.api("/readyz")[0] == 200

    def scheduler_ready(self) -> bool:
        """The scheduler's /healthz (a self-signed serving certificate)."""
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{self.ports().scheduler}/healthz"
        return api.request(url, unverified)[0] == 200

    def node_ready(self) -> bool:
        status, text = self.api(f"/api/v1/nodes/{components.FAKE_NODE}")
        conditions = (
            json.loads(text).get("status", {}).get("conditions", []) if status == 200 else []
        )
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def default_service_account_exists(self) -> bool:
        return self.api("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    def ensure_fake_node(self) -> None:
        status, text = self.api("/api/v1/nodes", "POST", components.fake_node_manifest())
        if status not in (201, 409):  # 409: it exists already, which is fine
            raise ClusterError(f"creating node {components.FAKE_NODE}: HTTP {status}: {text[:300]}")

    def healthy(self) -> bool:
        return (
            all(self.running(name) for name in ORDER)
            and self.apiserver_ready()
            and self.node_ready()
        )

    # -- commands ------------------------------------------------------------

    def prepare(self) -> None:
        """State dir, ports (chosen once, then reused), PKI and kubeconfigs."""
        self.layout.make_dirs()
        if Ports.load(self.layout.ports_file) is None:
            Ports(*process.pick_free_ports(5)).save(self.layout.ports_file)
        if components.ensure_pki(self.layout.pki):
            say(f"generated CA, certificates and service-account key in {self.layout.pki}")
        components.write_kubeconfigs(self.layout, self.ports())

    def report_crashed(self) -> None:
        for name in ORDER:
            record = self.record(name)
            if record is not None and not process.is_alive(record):
                say(
                    f"{name} (pid {record.pid}) is not running; restarting it. Last log lines:\n"
                    f"{process.log_tail(self.layout.log_for(name))}"
                )

    def up(self) -> None:
        for name in ORDER:
            self.binary(name)  # fail before touching anything if `make tools` is needed
        self.prepare()
        if self.healthy():
            say(f"already running ({self.layout.root})")
            return
        self.report_crashed()
        self.start(ETCD)
        self.wait_for("etcd", self.etcd_ready, (ETCD,), ETCD_READY_TIMEOUT_S)
        self._start_apiserver_and_wait()
        for name in (CONTROLLER_MANAGER, SCHEDULER, KWOK):
            self.start(name)
        self.ensure_fake_node()
        self.wait_for(
            f"node {components.FAKE_NODE}", self.node_ready, ORDER, COMPONENT_READY_TIMEOUT_S
        )
        self.wait_for(
            "default ServiceAccount",
            self.default_service_account_exists,
            ORDER,
            COMPONENT_READY_TIMEOUT_S,
        )
        self.wait_for("kube-scheduler", self.scheduler_ready, ORDER, COMPONENT_READY_TIMEOUT_S)

    def stop_component(self, name: str) -> None:
        record = self.record(name)
        if record is None or not process.is_alive(record):
            say(f"{name} is not running")
        else:
            killed = process.stop(record)
            say(f"{'killed' if killed else 'stopped'} {name} (pid {record.pid})")
        self.layout.pid_for(name).unlink(missing_ok=True)
        ports = Ports.load(self.layout.ports_file)
        busy = process.wait_ports_free(ports.for_component(name)) if ports else []
        if busy:
            raise ClusterError(f"{name} stopped but port(s) {busy} are still in use")

    def start_apiserver(self) -> None:
        self.prepare()
        if not self.running(ETCD):
            raise ClusterError("etcd is not running; use `python -m tools.cluster up`")
        self._start_apiserver_and_wait()

    def _start_apiserver_and_wait(self) -> None:
        self.start(APISERVER)
        self.wait_for(
            "kube-apiserver /readyz",
            self.apiserver_ready,
            (ETCD, APISERVER),
            APISERVER_READY_TIMEOUT_S,
        )

    def down(self) -> None:
        if not self.layout.root.exists():
            say(f"no cluster state in {self.layout.root}; nothing to do")
            return
        for name in reversed(ORDER):
            if self.layout.pid_for(name).exists():
                self.stop_component(name)
        ports = Ports.load(self.layout.ports_file)
        busy = process.wait_ports_free(ports.all()) if ports else []
        if busy:
            raise ClusterError(f"ports {busy} still in use after stopping every component")
        remove_state(self.layout)
        say(f"removed {self.layout.root}")


def remove_state(layout: Layout) -> None:
    """Remove a state dir, but only one that looks like ours (a typo'd --state-dir
    pointing at $HOME must not be wiped)."""
    if not (layout.ports_file.exists() or layout.pids.exists() or layout.pki.exists()):
        raise ClusterError(f"{layout.root} does not look like a cluster state dir; not removing")
    shutil.rmtree(layout.root)


@contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Serialise commands on one state dir (two `make cluster-up` at once)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield

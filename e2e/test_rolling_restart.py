"""Restarting servers one at a time under load loses no call (what a rolling upgrade does).

Two real `python -m server` processes on 127.0.0.1 watch a throwaway namespace of the
local API server. Client threads call GetReplicas (an idempotent read) through a client
that retries on the other address. Each server in turn gets SIGTERM mid-load (it turns
not-ready, drains in-flight RPCs and exits 0), is started again on the same ports, and
the next one is only stopped once the client has been served by the restarted one (what
readiness and minReadySeconds make a Deployment rollout wait for). Expected: zero
failed calls.

Retry policy: UNAVAILABLE, and CANCELLED because this client never cancels a call itself:
grpc core answers CANCELLED (not UNAVAILABLE) to calls that reach a server in the instant
its shutdown begins, before a handler accepted them (grpc/grpc#41785). Channels reconnect
after at most 1 s so a restarted server is used again promptly.

This is the server half of a lossless rolling upgrade; the chart half (maxUnavailable 0,
preStop sleep, readiness) is e2e/test_chart_upgrade.py.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
import pytest

from charts import helmtool
from replicant.v1 import replicant_pb2, replicant_pb2_grpc
from tools import devcerts
from tools.server_process import ServerProcess, eventually, start_server

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl

DEPLOYMENT = "web"
CLIENT_THREADS = 4
CALL_TIMEOUT_S = 5.0
# A call tries every address this many times before it counts as failed.
ATTEMPT_ROUNDS = 3
# Calls that must succeed between steps, so each restart really happens under load.
CALLS_PER_PHASE = 150
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60.0
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
CHANNEL_OPTIONS = [
    # The certificate names localhost; the client dials 127.0.0.1.
    ("grpc.ssl_target_name_override", "localhost"),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Slot:
    """One server address: a `python -m server` on fixed ports, restartable in place."""

    name: str
    kubeconfig: Path
    pki: Path
    namespace: str
    log_dir: Path
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: ServerProcess | None = None
    starts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> None:
        self.starts += 1
        self.process = start_server(
            self.kubeconfig, self.pki, self.log_dir / f"{self.name}-{self.starts}.log",
            namespaces=[self.namespace],
            extra_args=[
                "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
                "--leader-election-namespace", self.namespace,
            ],
        )  # fmt: skip

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.proc.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.process.proc.returncode}")
        try:
            status, _ = self.process.http("/readyz")
        except (urllib.error.URLError, OSError):
            return False
        return status == 200

    def terminate(self) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.process is not None
        return self.process.terminate(timeout=EXIT_TIMEOUT_S)

    def kill(self) -> None:
        if self.process is not None and self.process.proc.poll() is None:
            self.process.proc.kill()
            self.process.proc.wait(timeout=EXIT_TIMEOUT_S)


@dataclass
class Tally:
    """Call outcomes across client threads."""

    ok: int = 0
    ok_by_address: dict[str, int] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served_by(self, address: str) -> int:
        with self.lock:
            return self.ok_by_address.get(address, 0)


def status_of(err: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    """Code and "CODE: details" of a failed call (the raised error is also a grpc.Call)."""
    code, details = getattr(err, "code", None), getattr(err, "details", None)
    if callable(code) and callable(details):
        status: grpc.StatusCode = code()
        return status, f"{status.name}: {details()}"
    return None, repr(err)


class RetryingClient:
    """GetReplicas against several addresses; UNAVAILABLE moves on to the next one."""

    def __init__(self, addresses: list[str], credentials: grpc.ChannelCredentials) -> None:
        self.addresses = addresses
        self.channels = [
            grpc.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
            for address in addresses
        ]
        self.stubs = [replicant_pb2_grpc.ReplicaServiceStub(c) for c in self.channels]

    def get_replicas(self, namespace: str, start: int, tally: Tally) -> None:
        request = replicant_pb2.GetReplicasRequest(
            ref=replicant_pb2.DeploymentRef(namespace=namespace, name=DEPLOYMENT)
        )
        last = ""
        for attempt in range(ATTEMPT_ROUNDS * len(self.stubs)):
            index = (start + attempt) % len(self.stubs)
            try:
                self.stubs[index].GetReplicas(request, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as err:
                code, last = status_of(err)
                if code not in RETRYABLE:
                    break
                with tally.lock:
                    name = code.name if code else "?"
                    tally.retried[name] = tally.retried.get(name, 0) + 1
                continue
            with tally.lock:
                tally.ok += 1
                address = self.addresses[index]
                tally.ok_by_address[address] = tally.ok_by_address.get(address, 0) + 1
            return
        with tally.lock:
            tally.failed.append(last)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def load(client: RetryingClient, namespace: str, worker: int, tally: Tally,
         stop: threading.Event) -> None:  # fmt: skip
    call = 0
    while not stop.is_set():
        client.get_replicas(namespace, worker + call, tally)
        call += 1


@pytest.fixture
def servers(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> Iterator[list[Slot]]:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(helmtool.CRD_FILE))
    kubectl("create", "deployment", DEPLOYMENT, "--image=registry.example/web:1", "-n", namespace)
    pki = tmp_path / "pki"
    devcerts.generate(pki)
    slots = [
        Slot(name, kube_cluster.kubeconfig, pki, namespace, tmp_path)
        for name in ("server-a", "server-b")
    ]
    try:
        for slot in slots:
            slot.start()
        for slot in slots:
            eventually(f"{slot.name} /readyz", slot.ready, READY_TIMEOUT_S)
        yield slots
    finally:
        for slot in slots:
            slot.kill()


def test_sigterm_one_server_at_a_time_under_load_fails_no_call(
    servers: list[Slot], namespace: str, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:  # fmt: skip
    pki = tmp_path / "pki"
    credentials = grpc.ssl_channel_credentials(
        (pki / "ca.crt").read_bytes(), (pki / "reader.key").read_bytes(),
        (pki / "reader.crt").read_bytes(),
    )  # fmt: skip
    client = RetryingClient([server.address for server in servers], credentials)
    tally, stop = Tally(), threading.Event()
    workers = [
        threading.Thread(target=load, args=(client, namespace, n, tally, stop), daemon=True)
        for n in range(CLIENT_THREADS)
    ]
    exit_codes: list[int] = []

    def served(server: Slot) -> None:
        """Wait until `server` has answered CALLS_PER_PHASE more calls."""
        target = tally.served_by(server.address) + CALLS_PER_PHASE
        eventually(f"{CALLS_PER_PHASE} calls served by {server.name}",
                   lambda: tally.served_by(server.address) >= target, READY_TIMEOUT_S)  # fmt: skip

    try:
        for worker in workers:
            worker.start()
        for server in servers:
            served(server)
        for server, other in zip(servers, reversed(servers), strict=True):
            exit_codes.append(server.terminate())
            served(other)
            server.start()
            eventually(f"{server.name} ready again", server.ready, READY_TIMEOUT_S)
            served(server)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=CALL_TIMEOUT_S * ATTEMPT_ROUNDS * 2 + 1)
        client.close()

    record_property("calls_ok", tally.ok)
    record_property("calls_failed", len(tally.failed))
    record_property("attempts_retried", tally.retried)
    print(f"\nrolling restart: {tally.ok} calls ok, {len(tally.failed)} failed; attempts "
          f"retried on the other server by code: {tally.retried}")  # fmt: skip
    assert exit_codes == [0, 0]
    assert tally.failed == []

"""Run `python -m server` as a real process (e2e tests, tools/bench.py), and talk to it over mTLS.

Ports are picked by the kernel (--grpc-port 0 --http-port 0) and read back from the server's
"serving" log line, so parallel runs never collide. Logs (JSON lines) go to a file the test reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from replicant.v1 import replicant_pb2_grpc
from tools import devcerts
from tools.cluster.paths import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

START_TIMEOUT_S = 30.0
POLL_S = 0.1


def client_credentials(pki: Path, who: str) -> grpc.ChannelCredentials:
    """mTLS as the dev PKI's client `who` (reader, writer, ...; tools/devcerts.py)."""
    return grpc.ssl_channel_credentials(
        (pki / "ca.crt").read_bytes(),
        (pki / f"{who}.key").read_bytes(),
        (pki / f"{who}.crt").read_bytes(),
    )


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    pki: Path
    grpc_port: int = 0
    http_port: int = 0

    def logs(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def channel(self, who: str = "reader") -> grpc.Channel:
        return grpc.secure_channel(f"127.0.0.1:{self.grpc_port}", client_credentials(self.pki, who))

    def stub(self, chan: grpc.Channel) -> replicant_pb2_grpc.ReplicaServiceStub:
        return replicant_pb2_grpc.ReplicaServiceStub(chan)

    def http(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def terminate(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def start_server(
    kubeconfig: Path,
    pki: Path,
    log_path: Path,
    *,
    namespaces: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO_ROOT / 'gen'}:{REPO_ROOT}",
        "KUBECONFIG": str(kubeconfig),
    }
    argv = [
        sys.executable, "-m", "server",
        "--grpc-port", "0", "--http-port", "0",
        "--tls-cert-file", str(pki / "server.crt"), "--tls-key-file", str(pki / "server.key"),
        "--client-ca-file", str(pki / "client-ca.crt"),
        "--namespaces", ",".join(namespaces),
        *extra_args,
    ]  # fmt: skip
    if "--readers" not in extra_args and "--writers" not in extra_args:  # grants add up
        argv += ["--readers", devcerts.READER_ID, "--writers", devcerts.WRITER_ID]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stderr=log, stdout=log)
    server = ServerProcess(proc, log_path, pki)
    for _ in range(int(START_TIMEOUT_S / POLL_S)):
        serving = [e for e in server.logs() if e.get("msg") == "serving"]
        if serving:
            server.grpc_port, server.http_port = serving[0]["grpc_port"], serving[0]["http_port"]
            return server
        if proc.poll() is not None:
            break
        time.sleep(POLL_S)
    proc.kill()
    proc.wait()
    raise AssertionError(f"server did not start:\n{log_path.read_text()}")


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code `call` ends with (OK when it returns)."""
    try:
        call()
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def eventually(what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> float:
    """Poll until true (bounded); returns the seconds it took. Fails with `what` otherwise."""
    start = time.monotonic()
    for _ in range(int(timeout_s / POLL_S) + 1):
        if predicate():
            return time.monotonic() - start
        time.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")

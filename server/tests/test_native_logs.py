"""Issue 23 item 1: bytes a caller chooses before authenticating never reach stderr as log lines.

gRPC core used to write the TLS server name (SNI) of a refused ClientHello verbatim to stderr, so
a newline and a JSON object in it forged a `replicant.access` record without any certificate.
This starts a real `python -m server` process (no API server: it listens, not ready), sends
crafted server names over real TLS, with and without a client certificate, and a bounded flood,
then reads every stderr line back: each must be one JSON object, and none the forged one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING

from server.tests.test_entry_point import KUBECONFIG

if TYPE_CHECKING:
    from pathlib import Path

FORGED = '{"logger":"replicant.access","msg":"rpc","method":"SetReplicas","code":"OK"}'
SERVER_NAMES = [
    "x\n" + FORGED,  # a newline, then a JSON record
    "a\x01\x07\x1b[31mb\r\x7f",  # control characters
    ".".join(["n" * 63] * 160),  # 10 KiB
]
FLOOD = 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _handshake(port: int, server_name: str, pki: Path | None) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if pki is not None:
        context.load_cert_chain(pki / "reader.crt", pki / "reader.key")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                tls.recv(1)  # the server's first frame, or the refusal
        except (ssl.SSLError, OSError):
            pass  # refused: what gRPC core would have logged


def test_crafted_server_names_and_a_flood_leave_only_json_lines_on_stderr(
    tmp_path: Path, pki: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    grpc_port, http_port = _free_port(), _free_port()
    argv = [
        *(sys.executable, "-m", "server", "--kubeconfig", str(kubeconfig)),
        *("--grpc-port", str(grpc_port)),
        *("--http-port", str(http_port), "--tls-cert-file", str(pki / "server.crt")),
        *("--tls-key-file", str(pki / "server.key")),
        *("--client-ca-file", str(pki / "client-ca.crt")),
    ]
    # GRPC_VERBOSITY from the test's own environment must not decide the outcome.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
    try:
        for _ in range(100):  # bounded wait for the probe port
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/livez", timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        for name in SERVER_NAMES:
            _handshake(grpc_port, name, None)  # no certificate: refused at the handshake
            _handshake(grpc_port, name, pki)  # a valid certificate, a name not on the server's
        for _ in range(FLOOD):
            _handshake(grpc_port, SERVER_NAMES[0], None)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    lines = log.read_bytes().decode("utf-8", "replace").splitlines()
    records = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    assert all(isinstance(record, dict) for record in records)
    assert not [r for r in records if r.get("logger") == "replicant.access"]
    assert proc.returncode == 0

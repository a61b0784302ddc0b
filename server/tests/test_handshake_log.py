"""Refused handshakes reach the server's log and /metrics, though grpcio has no hook for them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import TYPE_CHECKING

import grpc
import pytest

from server import handshake_log
from server.tests.test_entry_point import KUBECONFIG
from tools import exposition

if TYPE_CHECKING:
    from pathlib import Path

VERIFY_FAILED = (
    b"I1201 21:39:18.014879   24727 ssl_transport_security.cc:2563] Handshake failed with error "
    b"SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: "
    b"unable to get local issuer certificate"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (VERIFY_FAILED, ("CERTIFICATE_VERIFY_FAILED", "unable to get local issuer certificate")),
        (
            b"I1201 ssl_transport_security.cc:2563] Handshake failed with error SSL_ERROR_SSL: "
            b"error:100000b8:SSL routines:OPENSSL_internal:NO_SHARED_CIPHER",
            ("NO_SHARED_CIPHER", ""),
        ),
        (
            b"E1201 ssl_transport_security.cc:1] Handshake failed with error SSL_ERROR_SYSCALL",
            ("SSL_ERROR_SYSCALL", ""),
        ),
        (b"I1201 chttp2_transport.cc:1] something else", None),
        (b'{"msg": "Handshake failed with error X"}', None),  # not gRPC core's line
    ],
)
def test_parse_reads_grpc_core_handshake_lines(
    line: bytes, expected: tuple[str, str] | None
) -> None:
    assert handshake_log.parse(line) == expected


def test_tap_counts_handshake_lines_and_passes_every_other_line_through() -> None:
    source_read, source_write = os.pipe()
    forward_read, forward_write = os.pipe()
    tap = handshake_log.HandshakeTap(source_read, forward_write)
    thread = threading.Thread(target=tap.run)
    thread.start()
    os.write(source_write, VERIFY_FAILED + b"\nother line\n" + VERIFY_FAILED + b"\nlast")
    os.close(source_write)
    thread.join(timeout=5)
    os.close(forward_write)
    with os.fdopen(forward_read, "rb") as forwarded:
        assert forwarded.read() == b"other line\nlast\n"
    assert tap.counts() == {"CERTIFICATE_VERIFY_FAILED": 2}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_server_logs_and_counts_a_refused_handshake(tmp_path: Path, pki: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)  # no API server: gRPC still listens, not ready
    grpc_port, http_port = _free_port(), _free_port()
    argv = [
        *(sys.executable, "-m", "server", "--kubeconfig", str(kubeconfig)),
        *("--bind-address", "127.0.0.1", "--grpc-port", str(grpc_port)),
        *("--http-port", str(http_port), "--tls-cert-file", str(pki / "server.crt")),
        *("--tls-key-file", str(pki / "server.key")),
        *("--client-ca-file", str(pki / "client-ca.crt")),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
    try:
        for _ in range(100):  # bounded wait for the probe port
            try:
                _metrics(http_port)
                break
            except OSError:
                time.sleep(0.1)
        creds = grpc.ssl_channel_credentials(
            (pki / "ca.crt").read_bytes(),
            (pki / "untrusted.key").read_bytes(),
            (pki / "untrusted.crt").read_bytes(),
        )
        for _ in range(3):
            with (
                grpc.secure_channel(f"127.0.0.1:{grpc_port}", creds) as chan,
                pytest.raises(grpc.FutureTimeoutError),
            ):
                grpc.channel_ready_future(chan).result(timeout=1)
        count = 0.0
        for _ in range(50):  # the tap thread counts asynchronously
            count = (
                exposition.sample(
                    _metrics(http_port),
                    "replicant_client_refusals_total",
                    stage="handshake",
                    reason="CERTIFICATE_VERIFY_FAILED",
                )
                or 0.0
            )
            if count >= 3:
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    refused = [e for e in entries if e["msg"] == "TLS handshake refused"]
    assert count >= 3
    assert refused[0]["reason"] == "CERTIFICATE_VERIFY_FAILED"
    assert len(refused) == 1  # rate-limited: one line per reason per 10 s
    assert "Handshake failed" not in log.read_text()  # gRPC core's own line was replaced

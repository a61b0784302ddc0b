"""`python -m server` fails with one JSON error line, no traceback, when it cannot start."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Points at a closed port: the process must fail on its own ports before it needs the API server.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: unused}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def run_server(
    tmp_path: Path, pki: Path, grpc_port: int, http_port: int, *extra: str
) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    argv = [
        *(sys.executable, "-m", "server", "--kubeconfig", str(kubeconfig)),
        *("--grpc-port", str(grpc_port)),
        *("--http-port", str(http_port), "--tls-cert-file", str(pki / "server.crt")),
        *("--tls-key-file", str(pki / "server.key")),
        *("--client-ca-file", str(pki / "client-ca.crt")),
        *extra,
    ]
    # The child sees this interpreter's import path (under Bazel it is not in the environment).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)


@pytest.mark.parametrize("which", ["grpc", "http"])
def test_server_exits_1_with_a_logged_error_when_its_port_is_taken(
    tmp_path: Path, pki: Path, taken_port: int, which: str
) -> None:
    grpc_port, http_port = (taken_port, 0) if which == "grpc" else (0, taken_port)

    result = run_server(tmp_path, pki, grpc_port, http_port)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [json.loads(line) for line in result.stderr.splitlines() if '"level": "error"' in line]
    assert [e["msg"] for e in errors] == ["cannot listen"]


def test_server_exits_2_with_a_logged_error_naming_an_invalid_namespace(
    tmp_path: Path, pki: Path
) -> None:
    result = run_server(tmp_path, pki, 0, 0, "--namespaces", "apps,Bad_NS")

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["level"], e["msg"]) for e in lines] == [("error", "invalid configuration")]
    assert lines[0]["error"] == "--namespaces: 'Bad_NS' is not a DNS-1123 label"

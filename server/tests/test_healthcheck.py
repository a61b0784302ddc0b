"""The one-shot health client (`python -m server healthcheck`) against a real mTLS server."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from server import healthcheck

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# grpcio-health-checking ships no type information (see server/healthcheck.py).
_health = importlib.import_module("grpc_health.v1.health")
_health_pb2 = importlib.import_module("grpc_health.v1.health_pb2")
_health_pb2_grpc = importlib.import_module("grpc_health.v1.health_pb2_grpc")

TEST_TIMEOUT_S = 5.0


@pytest.fixture
def health_server(pki: Path) -> Iterator[tuple[str, Any]]:
    """An mTLS gRPC server on 127.0.0.1 with the standard health servicer."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = _health.HealthServicer()
    _health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.crt").read_bytes())],
        root_certificates=(pki / "client-ca.crt").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"localhost:{port}", servicer  # the name the server certificate holds
    finally:
        server.stop(grace=None)


def args(address: str, pki: Path, client: str = "nobody") -> list[str]:
    return [
        f"--address={address}",
        f"--cert-file={pki / f'{client}.crt'}",
        f"--key-file={pki / f'{client}.key'}",
        f"--ca-file={pki / 'ca.crt'}",
        f"--timeout={TEST_TIMEOUT_S}",
    ]


def test_serving_server_exits_zero(health_server: tuple[str, Any], pki: Path) -> None:
    address, _ = health_server

    assert healthcheck.main(args(address, pki)) == 0


def test_not_serving_server_exits_one(
    health_server: tuple[str, Any], pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address, servicer = health_server
    servicer.set("", _health_pb2.HealthCheckResponse.NOT_SERVING)

    assert healthcheck.main(args(address, pki)) == 1
    assert "NOT_SERVING" in capsys.readouterr().out


def test_client_certificate_from_untrusted_ca_exits_one(
    health_server: tuple[str, Any], pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address, _ = health_server

    assert healthcheck.main(args(address, pki, client="untrusted")) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_entry_point_dispatches_healthcheck_subcommand(tmp_path: Path) -> None:
    # The image has one entry point, so `helm test` runs `server healthcheck ...`; with no
    # server listening the answer is "unhealthy" (1), not a usage error (2) or a crash.
    missing = tmp_path / "missing.pem"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "server", "healthcheck", "--address", "127.0.0.1:1"),
            *("--cert-file", str(missing), "--key-file", str(missing), "--ca-file", str(missing)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # The child sees this interpreter's import path (under Bazel it is not in the environment).
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 1, result.stderr  # a missing file is a failure, not a crash
    assert "health check of 127.0.0.1:1 failed" in result.stderr

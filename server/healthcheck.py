"""One-shot gRPC health client: `python -m server.healthcheck --address host:port ...`.

Why it exists: the replicant image has no grpcurl (only a slim base and the app), yet `helm test`
and operators need to ask a running server "are you SERVING?" over the same mTLS the
API uses. The image already ships Python, grpcio and the health stubs, so the check
is this module: it calls grpc.health.v1.Health/Check with a client certificate and
exits 0 when the answer is SERVING, 1 for any other answer or failure, 2 on bad usage.

Health needs only a valid client certificate (no reader/writer role), so any
certificate signed by the server's client CA works.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc

HEALTH_CHECK_METHOD: Final = "/grpc.health.v1.Health/Check"
DEFAULT_TIMEOUT_S: Final = 10.0
EXIT_SERVING: Final = 0
EXIT_UNHEALTHY: Final = 1

# grpcio-health-checking ships no type information; importing the generated module by
# name keeps the untyped surface to the two message classes used below.
_health_pb2 = importlib.import_module("grpc_health.v1.health_pb2")


class HealthCheckError(Exception):
    """The check could not produce an answer (bad files, TLS or transport failure)."""


@dataclass(frozen=True)
class HealthCheckConfig:
    """Where to connect and with which credentials."""

    address: str
    cert_file: Path
    key_file: Path
    ca_file: Path
    server_name: str | None = None
    service: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise HealthCheckError(f"cannot read {path}: {err.strerror}") from err


def channel_credentials(config: HealthCheckConfig) -> grpc.ChannelCredentials:
    """mTLS credentials: trust ca_file, present cert_file/key_file."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(config.ca_file),
        private_key=_read(config.key_file),
        certificate_chain=_read(config.cert_file),
    )


def _serialize_request(service: str) -> bytes:
    data: bytes = _health_pb2.HealthCheckRequest(service=service).SerializeToString()
    return data


def _status_name(response: bytes) -> str:
    message = _health_pb2.HealthCheckResponse.FromString(response)
    name: str = _health_pb2.HealthCheckResponse.ServingStatus.Name(message.status)
    return name


def check(config: HealthCheckConfig) -> str:
    """Return the serving status name (e.g. "SERVING", "NOT_SERVING") of config.service.

    One attempt, bounded by the timeout: a refused connection or a failed TLS handshake
    is reported at once (UNAVAILABLE) rather than retried until the deadline.
    """
    options: list[tuple[str, str | int]] = []
    if config.server_name:
        options.append(("grpc.ssl_target_name_override", config.server_name))
    credentials = channel_credentials(config)
    with grpc.secure_channel(config.address, credentials, options=options) as channel:
        call = channel.unary_unary(
            HEALTH_CHECK_METHOD,
            request_serializer=_serialize_request,
            response_deserializer=_status_name,
        )
        try:
            status: str = call(config.service, timeout=config.timeout_s)
        except grpc.RpcError as err:
            raise HealthCheckError(f"{HEALTH_CHECK_METHOD} failed: {_describe(err)}") from err
    return status


def _describe(err: grpc.RpcError) -> str:
    """Describe a failed call as CODE: details (the raised error is also a grpc.Call)."""
    code = getattr(err, "code", None)
    details = getattr(err, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()}"
    return str(err) or type(err).__name__


def parse_args(argv: list[str]) -> HealthCheckConfig:
    parser = argparse.ArgumentParser(
        prog="server healthcheck",
        description="Check grpc.health.v1.Health over mTLS; exit 0 only if SERVING.",
    )
    parser.add_argument("--address", required=True, help="host:port of the gRPC server")
    parser.add_argument("--cert-file", required=True, type=Path, help="client certificate")
    parser.add_argument("--key-file", required=True, type=Path, help="client private key")
    parser.add_argument("--ca-file", required=True, type=Path, help="CA of the server cert")
    parser.add_argument(
        "--server-name", default=None, help="TLS name to verify (default: the address host)"
    )
    parser.add_argument("--service", default="", help='health service name (default: "")')
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return HealthCheckConfig(
        address=args.address,
        cert_file=args.cert_file,
        key_file=args.key_file,
        ca_file=args.ca_file,
        server_name=args.server_name,
        service=args.service,
        timeout_s=args.timeout,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        status = check(config)
    except HealthCheckError as err:
        print(f"health check of {config.address}: {err}", file=sys.stderr)
        return EXIT_UNHEALTHY
    print(f"health check of {config.address}: {status}")
    return EXIT_SERVING if status == "SERVING" else EXIT_UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())

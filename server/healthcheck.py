"""`python -m server healthcheck --address HOST:PORT ...`: one grpc.health.v1 Check over mTLS
(requirement: the chart's `helm test`; the image has no shell and no grpcurl). Exit 0 only when
the answer is SERVING, 1 for any other answer or failure, 2 on bad usage (argparse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="server healthcheck")
    parser.add_argument("--address", required=True, help="host:port of the gRPC server")
    for name in ("cert", "key", "ca"):
        parser.add_argument(f"--{name}-file", required=True, type=Path)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds")
    args = parser.parse_args(argv)
    try:
        creds = grpc.ssl_channel_credentials(
            args.ca_file.read_bytes(), args.key_file.read_bytes(), args.cert_file.read_bytes()
        )
        with grpc.secure_channel(args.address, creds) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=args.timeout
            )
    except (OSError, grpc.RpcError) as exc:
        print(f"health check of {args.address} failed: {exc}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"health check of {args.address}: {status}")
    return 0 if status == "SERVING" else 1

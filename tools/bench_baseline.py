"""The floor `make bench` measures replicant against: a bare grpc.aio server, prebuilt replies.

A figure for replicant alone says little on a shared 2-core machine; next to the same figure for a
server that does nothing but grpc, mTLS and serialising the same bytes, measured in the same run,
it says what replicant's own code costs. So this server has the same proto, the same mTLS
(server/tls.py builds the credentials: client certificate required, TLS 1.3 only through the
cipher policy of server/cipher_policy.py, applied before grpc is imported) and no interceptor,
cache, validation or Kubernetes: GetReplicas returns one prebuilt GetReplicasResponse and
ListDeployments one prebuilt page of `--page-size` Deployments (grpc still serialises it per
call: that is the floor's CPU for sending the same page). SetReplicas answers UNIMPLEMENTED.

Run as its own process, like replicant: `python -m tools.bench_baseline --tls-cert-file ...
--port 0` logs one JSON line {"msg": "serving", "grpc_port": N} on stderr and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from server import cipher_policy

cipher_policy.apply()  # before grpc is imported (below)

import grpc  # noqa: E402

from replicant.v1 import replicant_pb2 as pb  # noqa: E402
from replicant.v1 import replicant_pb2_grpc  # noqa: E402
from server import tls  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Sequence

# What replicant answers for a Deployment with replicas 0 that the controller has seen.
GENERATION = 1
# About the length of replicant's next_page_token (base64 key + HMAC tag, server/page_tokens.py).
PAGE_TOKEN = "WyJyZXBsaWNhbnQtYmVuY2giLCJiZW5jaC0wNDk5Il0." + "t" * 43


def deployment(namespace: str, name: str) -> pb.Deployment:
    return pb.Deployment(
        ref=pb.DeploymentRef(namespace=namespace, name=name),
        current=pb.CurrentState(generation=GENERATION, observed_generation=GENERATION),
    )


def prebuilt_get(namespace: str, name: str, as_of: datetime) -> pb.GetReplicasResponse:
    response = pb.GetReplicasResponse(deployment=deployment(namespace, name))
    response.as_of.FromDatetime(as_of)
    return response


def prebuilt_page(namespace: str, size: int, as_of: datetime) -> pb.ListDeploymentsResponse:
    """The first page of `size` of the bench's Deployments (bench-0000, bench-0001, ...)."""
    response = pb.ListDeploymentsResponse(
        deployments=[deployment(namespace, f"bench-{i:04d}") for i in range(size)],
        next_page_token=PAGE_TOKEN,
    )
    response.as_of.FromDatetime(as_of)
    return response


class PrebuiltReplicaService(replicant_pb2_grpc.ReplicaServiceServicer):
    """Answers every read with the same prebuilt message, whatever it asks."""

    def __init__(self, get: pb.GetReplicasResponse, page: pb.ListDeploymentsResponse) -> None:
        self._get = get
        self._page = page

    async def GetReplicas(  # noqa: N802 - name fixed by the proto
        self, request: pb.GetReplicasRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetReplicasResponse:
        return self._get

    async def ListDeployments(  # noqa: N802 - name fixed by the proto
        self, request: pb.ListDeploymentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListDeploymentsResponse:
        return self._page

    async def SetReplicas(  # noqa: N802 - name fixed by the proto
        self, request: pb.SetReplicasRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SetReplicasResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the baseline only reads")


async def serve(args: argparse.Namespace) -> int:
    files = tls.CertificateFiles(args.tls_cert_file, args.tls_key_file, args.client_ca_file)
    as_of = datetime.now(UTC)
    service = PrebuiltReplicaService(
        prebuilt_get(args.namespace, "bench-0500", as_of),
        prebuilt_page(args.namespace, args.page_size, as_of),
    )
    server = grpc.aio.server()
    replicant_pb2_grpc.add_ReplicaServiceServicer_to_server(service, server)
    port = server.add_secure_port(f"127.0.0.1:{args.port}", tls.server_credentials(files))
    await server.start()
    print(json.dumps({"msg": "serving", "grpc_port": port}), file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_baseline", description=__doc__)
    parser.add_argument("--tls-cert-file", required=True)
    parser.add_argument("--tls-key-file", required=True)
    parser.add_argument("--client-ca-file", required=True)
    parser.add_argument("--port", type=int, default=0, help="0: the kernel picks one")
    parser.add_argument("--namespace", default="replicant-bench")
    parser.add_argument("--page-size", type=int, default=500)
    return asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

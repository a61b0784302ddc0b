"""Load for `make bench`: ghz, a Go process apart from both servers, and its JSON read back.

Why ghz and not a Python client: a Python grpc client spends about as much CPU per call as the
server it measures, so on 2 cores it, not the server, would be the bottleneck at c=50. ghz is
pinned in tools/versions.env and built like the other tools. It reads the API from a descriptor
set written here from the generated stubs (its bundled proto parser predates proto3 `optional`).

In that descriptor set the replies declare no fields. ghz decodes every reply into a dynamic
message, and for a 500-Deployment page that took 2.5 ms of ghz CPU per call (measured here), ten
times what the bare server spends sending it: ghz, not the server, was the bottleneck. With no
fields declared it skips the bytes (0.2 ms per call); it never looks at a reply's content anyway.
The bench checks the replies once with the real stubs (tools/bench.py, reply_sizes).
"""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2, timestamp_pb2

from replicant.v1 import replicant_pb2

if TYPE_CHECKING:
    from pathlib import Path

SERVICE = "replicant.v1.ReplicaService"
SKIMMED_REPLIES = ("GetReplicasResponse", "ListDeploymentsResponse")
# ghz stops a duration-bounded run by closing its connections; give it this long past the end.
GHZ_GRACE_S = 30.0
# Concurrent calls share at most this many HTTP/2 connections, as real clients would.
MAX_CONNECTIONS = 10


@dataclasses.dataclass(frozen=True)
class LoadResult:
    ok: int
    failed: dict[str, int]  # by status; mostly Unavailable: in flight when ghz stops at the end
    seconds: float
    latencies: list[float]  # of the OK calls, in seconds
    client_cpu_s: float = 0.0  # ghz's user + system time


def write_protoset(path: Path) -> Path:
    """The ReplicaService's FileDescriptorSet (with its imports), replies without fields."""
    files = descriptor_pb2.FileDescriptorSet()
    for module in (timestamp_pb2, replicant_pb2):
        module.DESCRIPTOR.CopyToProto(files.file.add())
    for message in files.file[-1].message_type:
        if message.name in SKIMMED_REPLIES:
            del message.field[:]
            del message.oneof_decl[:]
    path.write_bytes(files.SerializeToString())
    return path


def ghz_argv(
    ghz: Path,
    protoset: Path,
    pki: Path,
    port: int,
    *,
    method: str,
    request: dict[str, Any],
    concurrency: int,
    seconds: float,
    rps: int = 0,
) -> list[str]:
    """ghz's command line; `rps` > 0 offers that many calls per second, else as many as it can."""
    return [
        str(ghz), "--protoset", str(protoset), "--call", f"{SERVICE}.{method}",
        "--cacert", str(pki / "ca.crt"),
        "--cert", str(pki / "reader.crt"), "--key", str(pki / "reader.key"),
        "-d", json.dumps(request), "-c", str(concurrency),
        "--connections", str(min(concurrency, MAX_CONNECTIONS)),
        *(["--rps", str(rps)] if rps else []),
        "-z", f"{seconds:g}s", "-O", "json", f"127.0.0.1:{port}",
    ]  # fmt: skip


def parse_report(report: dict[str, Any]) -> LoadResult:
    """ghz's JSON report: per-call details (latency in ns, status) and the run's total (ns)."""
    details = report.get("details") or []
    latencies = [d["latency"] / 1e9 for d in details if d.get("status") == "OK"]
    failed: dict[str, int] = {}
    for detail in details:
        if (status := detail.get("status", "?")) != "OK":
            failed[status] = failed.get(status, 0) + 1
    return LoadResult(
        ok=len(latencies),
        failed=failed,
        seconds=report["total"] / 1e9,
        latencies=latencies,
    )


def children_cpu_s() -> float:
    """CPU time of the children this process has waited for (ghz's, around one run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ghz(argv: list[str], seconds: float) -> LoadResult:
    before = children_cpu_s()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + GHZ_GRACE_S)
    client_cpu_s = children_cpu_s() - before
    if done.returncode != 0 and not done.stdout.startswith("{"):
        raise RuntimeError(f"ghz failed ({done.returncode}): {done.stderr.strip()}")
    result = dataclasses.replace(parse_report(json.loads(done.stdout)), client_cpu_s=client_cpu_s)
    if not result.ok:
        raise RuntimeError(
            f"ghz: no call succeeded: {json.loads(done.stdout).get('errorDistribution')}"
        )
    return result

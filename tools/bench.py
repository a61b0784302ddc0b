"""`make bench`: replicant's CPU per call next to a bare grpc.aio floor, interleaved, and its start.

On a shared 2-core machine a figure alone is noise; its ratio to a floor measured seconds apart
on the same machine is not. The floor (`python -m tools.bench --floor PKI`) is a grpc.aio server
with the same proto and mTLS and prebuilt replies: what grpc, TLS and serialising the same bytes
cost. ghz, pinned in tools/versions.env, is the load: a Python client would spend as much CPU per
call as the server it measures.

Against the local control plane (`make cluster-up`; KUBECONFIG wins), with 1,000 Deployments
(replicas 0, no pods) in replicant-bench and 10,000 in replicant-bench-10k, made once and kept.
Each round starts replicant and the floor, then offers both the same fixed rate (below either's
capacity, so both batch alike) of GetReplicas and of ListDeployments (page_size 500), in the
order A B B A, and reads each server's CPU time from /proc around each phase. Then replicant
alone starts against the 10,000 and is timed to health SERVING. A ratio is the median over the
back-to-back pairs. Linux only (/proc); about four minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import descriptor_pb2, timestamp_pb2

from replicant.v1 import replicant_pb2 as pb
from replicant.v1 import replicant_pb2_grpc
from tools import devcerts
from tools.cluster.paths import REPO_ROOT, bin_dir, resolve_state_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

NAMESPACE, NAMESPACE_10K = "replicant-bench", "replicant-bench-10k"
COUNT, COUNT_10K, PAGE_SIZE = 1000, 10_000, 500
FIXED_RPS = 2000  # below either server's capacity on 2 cores
CONCURRENCY, CONNECTIONS = 50, 10
ROUNDS, PHASE_S = 3, 4.0
TIMEOUT_S = 180.0
CRD_FILE = REPO_ROOT / "charts/replicant/files/replicatargets.replicant.dev.yaml"
REQUESTS = {
    "GetReplicas": {"ref": {"namespace": NAMESPACE, "name": "bench-0500"}},
    "ListDeployments": {"namespace": NAMESPACE, "page_size": PAGE_SIZE},
}


# -- the floor ----------------------------------------------------------------------------------


class Floor(replicant_pb2_grpc.ReplicaServiceServicer):
    """Answers every read with one prebuilt reply: no interceptor, cache or validation."""

    def __init__(self) -> None:
        def deployment(name: str) -> pb.Deployment:
            current = pb.CurrentState(generation=1, observed_generation=1)
            return pb.Deployment(ref=pb.DeploymentRef(namespace=NAMESPACE, name=name),
                                 current=current)  # fmt: skip

        self.get = pb.GetReplicasResponse(deployment=deployment("bench-0500"))
        self.page = pb.ListDeploymentsResponse(
            deployments=[deployment(f"bench-{i:04d}") for i in range(PAGE_SIZE)],
            next_page_token="t" * 60,  # about the length of replicant's cursor
        )
        for reply in (self.get, self.page):
            reply.as_of.FromDatetime(datetime.now(UTC))

    async def GetReplicas(self, request: Any, context: Any) -> pb.GetReplicasResponse:  # noqa: N802
        return self.get

    async def ListDeployments(self, request: Any, context: Any) -> pb.ListDeploymentsResponse:  # noqa: N802
        return self.page

    async def SetReplicas(self, request: Any, context: Any) -> pb.SetReplicasResponse:  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the floor only reads")
        raise AssertionError("abort raises")


async def serve_floor(pki: Path) -> None:
    credentials = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.crt").read_bytes())],
        root_certificates=(pki / "client-ca.crt").read_bytes(),
        require_client_auth=True,
    )
    server = grpc.aio.server()
    replicant_pb2_grpc.add_ReplicaServiceServicer_to_server(Floor(), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    print(port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1.0)


# -- processes ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread, from /proc/<pid>/stat (fields 14 and 15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def poll(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {TIMEOUT_S:.0f} s waiting for {what}")
        time.sleep(0.01)


def serving(pki: Path, port: int) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

    from tools.server_process import client_credentials

    request = health_pb2.HealthCheckRequest(service="replicant.v1.ReplicaService")
    with grpc.secure_channel(f"127.0.0.1:{port}", client_credentials(pki, "reader")) as chan:
        try:
            status = health_pb2_grpc.HealthStub(chan).Check(request, timeout=5).status
        except grpc.RpcError:
            return False
    return bool(status == health_pb2.HealthCheckResponse.SERVING)


@contextlib.contextmanager
def replicant(
    kubeconfig: Path, pki: Path, tmp: Path, namespace: str
) -> Iterator[tuple[int, int, float]]:
    """(pid, port, seconds from spawn to health SERVING) of `python -m server`."""
    from tools.server_process import start_server

    began = time.monotonic()
    proc = start_server(kubeconfig, pki, tmp / f"{namespace}.log", namespaces=[namespace])
    try:
        poll("replicant SERVING", lambda: serving(pki, proc.grpc_port))
        yield proc.proc.pid, proc.grpc_port, time.monotonic() - began
    finally:
        proc.terminate()


@contextlib.contextmanager
def floor(pki: Path) -> Iterator[tuple[int, int]]:
    """(pid, port) of the floor, in its own process like replicant."""
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'gen'}:{REPO_ROOT}"}
    argv = [sys.executable, "-m", "tools.bench", "--floor", str(pki)]
    proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.pid, int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- load ---------------------------------------------------------------------------------------


def write_protoset(path: Path) -> Path:
    """The API for ghz, replies without fields: ghz then skips their bytes instead of decoding a
    500-Deployment page (2.5 ms of its CPU per call, more than the servers spend)."""
    files = descriptor_pb2.FileDescriptorSet()
    for module in (timestamp_pb2, pb):
        module.DESCRIPTOR.CopyToProto(files.file.add())
    for message in files.file[-1].message_type:
        if message.name in ("GetReplicasResponse", "ListDeploymentsResponse"):
            del message.field[:]
            del message.oneof_decl[:]
    path.write_bytes(files.SerializeToString())
    return path


def ghz_ok_calls(report: dict[str, Any]) -> int:
    """The OK calls of a ghz JSON report; fails when there are none."""
    counts = report.get("statusCodeDistribution") or {}
    if not counts.get("OK"):
        raise RuntimeError(f"ghz: no call succeeded: {report.get('errorDistribution')}")
    return int(counts["OK"])


def cpu_per_call(protoset: Path, pki: Path, pid: int, port: int, method: str) -> float:
    """Server CPU seconds per OK call while ghz offers FIXED_RPS of `method` for PHASE_S."""
    argv = [
        str(bin_dir() / "ghz"), "--protoset", str(protoset),
        "--call", f"replicant.v1.ReplicaService.{method}", "--cacert", str(pki / "ca.crt"),
        "--cert", str(pki / "reader.crt"), "--key", str(pki / "reader.key"),
        "-d", json.dumps(REQUESTS[method]), "-c", str(CONCURRENCY),
        "--connections", str(CONNECTIONS), "--rps", str(FIXED_RPS), "-z", f"{PHASE_S:g}s",
        "-O", "json", f"127.0.0.1:{port}",
    ]  # fmt: skip
    before = cpu_seconds(pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=PHASE_S + 30)
    spent = cpu_seconds(pid) - before
    if not done.stdout.startswith("{"):
        raise RuntimeError(f"ghz failed ({done.returncode}): {done.stderr.strip()}")
    return spent / ghz_ok_calls(json.loads(done.stdout))


# -- the cluster --------------------------------------------------------------------------------


def kubectl(kubeconfig: Path, *args: str) -> str:
    argv = [str(bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


def deployment_reads(kubeconfig: Path) -> int:
    """The API server's count of Deployment GET and LIST requests (any client)."""
    pattern = re.compile(r'^apiserver_request_total\{.*resource="deployments".*verb="(GET|LIST)"')
    lines = kubectl(kubeconfig, "get", "--raw", "/metrics").splitlines()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in lines if pattern.match(line))


async def seed(kubeconfig: Path, namespace: str, want: int) -> None:
    """bench-0000 .. bench-<want-1> exist in `namespace` (replicas 0); existing ones are kept."""
    from kube import client as kube_client
    from kube.errors import ConflictError

    api = await kube_client.connect(str(kubeconfig))
    try:
        with contextlib.suppress(ConflictError):
            await api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        page = await api.request("GET", path, query={"limit": "1"})
        if len(page["items"]) + int(page["metadata"].get("remainingItemCount", 0)) >= want:
            return
        print(f"creating {want:,} Deployments in {namespace} (once) ...", file=sys.stderr)
        gate = asyncio.Semaphore(32)

        async def create(name: str) -> None:
            labels = {"app": name}
            pod = {"containers": [{"name": "c", "image": "nginx"}]}
            template = {"metadata": {"labels": labels}, "spec": pod}
            spec = {"replicas": 0, "selector": {"matchLabels": labels}, "template": template}
            body = {"metadata": {"name": name}, "spec": spec}
            async with gate:
                with contextlib.suppress(ConflictError):
                    await api.request("POST", path, body=body)

        async with asyncio.timeout(600):
            await asyncio.gather(*(create(f"bench-{i:04d}") for i in range(want)))
    finally:
        await api.close()


# -- the run ------------------------------------------------------------------------------------


def ratio(mine: list[float], theirs: list[float]) -> str:
    return f"{statistics.median(a / b for a, b in zip(mine, theirs, strict=True)):.2f}x"


def measure(kubeconfig: Path, tmp: Path, rounds: int) -> list[tuple[str, str, str, str]]:
    pki = tmp / "pki"
    devcerts.generate(pki)
    protoset = write_protoset(tmp / "replicant.protoset")
    cpu: dict[tuple[str, str], list[float]] = {}
    starts: dict[str, list[float]] = {"1k": [], "10k": []}
    reads = 0  # during the load phases only: a start lists every Deployment once, by design
    for number in range(rounds):
        print(f"round {number + 1} of {rounds} ...", file=sys.stderr)
        with replicant(kubeconfig, pki, tmp, NAMESPACE) as (pid, port, took), floor(pki) as base:
            starts["1k"].append(took)
            servers = {"replicant": (pid, port), "floor": base}
            order = ["replicant", "floor"] if number % 2 == 0 else ["floor", "replicant"]
            reads_before = deployment_reads(kubeconfig)
            for method in REQUESTS:
                for name in (*order, *order[::-1]):  # A B B A: a drifting load weighs on both
                    per_call = cpu_per_call(protoset, pki, *servers[name], method)
                    cpu.setdefault((name, method), []).append(per_call)
            reads += deployment_reads(kubeconfig) - reads_before
        with replicant(kubeconfig, pki, tmp, NAMESPACE_10K) as (_, _, took):
            starts["10k"].append(took)

    def pairs(name: str, method: str) -> list[float]:
        values = cpu[name, method]  # A B B A: each back-to-back pair's mean, per round
        return [(values[i] + values[i + 1]) / 2 for i in range(0, len(values), 2)]

    rows = []
    for method in REQUESTS:
        mine, theirs = pairs("replicant", method), pairs("floor", method)
        label = f"{method} CPU per call at {FIXED_RPS:,}/s offered"
        mine_us, theirs_us = (f"{statistics.median(v) * 1e6:,.0f} µs" for v in (mine, theirs))
        rows.append((label, mine_us, theirs_us, ratio(mine, theirs)))
    for count, key in ((COUNT, "1k"), (COUNT_10K, "10k")):
        start = f"{statistics.median(starts[key]):.2f} s"
        rows.append((f"Start to SERVING, {count:,} Deployments", start, "", ""))
    rows.append(("API server Deployment GET/LIST under load", str(reads), "", ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="default: %(default)s")
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # the floor's process
    args = parser.parse_args(argv)
    if args.floor:
        asyncio.run(serve_floor(args.floor))
        return 0
    if not Path("/proc/self/stat").exists():
        print("make bench reads server CPU time from /proc: Linux only", file=sys.stderr)
        return 2
    kubeconfig = Path(os.environ.get("KUBECONFIG") or resolve_state_dir(None).admin_kubeconfig)
    began = time.monotonic()
    for namespace, count in ((NAMESPACE, COUNT), (NAMESPACE_10K, COUNT_10K)):
        asyncio.run(seed(kubeconfig, namespace, count))
    kubectl(kubeconfig, "apply", "-f", str(CRD_FILE))  # replicant watches ReplicaTargets
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/replicatargets.replicant.dev")
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(kubeconfig, Path(tmp), args.rounds)
    print(f"\nmake bench: median of {args.rounds} interleaved rounds, ghz c={CONCURRENCY}, "
          f"{PHASE_S:g} s a phase, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"{time.monotonic() - began:.0f} s\n")  # fmt: skip
    print("| figure | replicant | floor | ratio |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

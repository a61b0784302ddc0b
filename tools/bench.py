"""`make bench`: replicant next to a bare grpc server, interleaved in one run, as one table.

On a shared 2-core machine a figure alone is noise; its ratio to a floor measured minutes apart on
the same machine is not. The floor is tools/bench_baseline.py: the same proto and mTLS, prebuilt
replies. Both run as their own processes; ghz (tools/bench_load.py) is a third.

Against the local control plane (`make cluster-up`; KUBECONFIG wins if set), with 1,000
Deployments (replicas 0) in replicant-bench and 10,000 in replicant-bench-10k, kept between runs
(tools/bench_seed.py). Each round starts both servers (timing start -> SERVING, and the bare
server's start -> first served call), then for each load phase runs replicant and the baseline
back to back (who goes first alternates by round):

  * GetReplicas at c=1 and c=50, ListDeployments (page_size 500 of the 1,000) at c=50:
    calls/s, p50/p99, and server CPU per call (utime+stime from /proc/<pid>/stat over the phase);
    how busy the server was and ghz's CPU per call, to tell whether the server was the bottleneck;
  * both methods again at a fixed 2,000 calls/s offered, A B B A: CPU per call at equal batching;
  * RSS of each server after the reads; API server Deployment GET/LIST during them (must be 0);
  * then replicant alone against the 10,000 (start -> SERVING, RSS).

Each row is the median over rounds, and its ratio the median of the pairs' ratios (a pair is
measured back to back, so both share the load of its moment). Replicant only, once, in
the last round: watch propagation (scale through the API -> seen by GetReplicas) and SetReplicas ->
Deployment spec.

Bounded: every phase has a timeout, and no round starts after ROUND_BUDGET_S; about five minutes
on 2 cores once the Deployments exist (the first run also creates 11,000, in about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server import cipher_policy

cipher_policy.apply()  # before grpc is imported (below, lazily)

from tools import bench_load, bench_seed, bench_stats, devcerts  # noqa: E402
from tools.bench_stats import Row, median, paired_ratio, percentile, times  # noqa: E402
from tools.cluster.paths import REPO_ROOT, bin_dir, resolve_state_dir  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tools.server_process import ServerProcess

NAMESPACE = "replicant-bench"
NAMESPACE_10K = "replicant-bench-10k"
COUNT, COUNT_10K = 1000, 10_000
PAGE_SIZE = 500
FIXED_RPS = 2000  # below either server's capacity on 2 cores (about 2,600 List pages/s)
ROUNDS = 5
PHASE_SECONDS = 4.0
WARMUP_SECONDS = 1.0
ROUND_BUDGET_S = 420.0  # no new round after this; one round takes 60 s on 2 cores
SEED_TIMEOUT_S = 600.0  # the first run only
SERVING_TIMEOUT_S = 180.0
POLL_S = 0.01
PROPAGATION_SAMPLES = 20
SET_SAMPLES = 19  # plus one unmeasured call: bench-0002 ends at 0 replicas
SET_TIMEOUT_S = 30.0
CRD_FILE = REPO_ROOT / "charts/replicant/files/replicatargets.replicant.dev.yaml"
REPLICANT, BASELINE = "replicant", "baseline"
GET_REQUEST = {"ref": {"namespace": NAMESPACE, "name": "bench-0500"}}
LIST_REQUEST = {"namespace": NAMESPACE, "page_size": PAGE_SIZE}


@dataclass(frozen=True)
class Phase:
    method: str
    concurrency: int
    rps: int = 0  # calls offered per second; 0: as many as the server answers

    @property
    def request(self) -> dict[str, Any]:
        return GET_REQUEST if self.method == "GetReplicas" else LIST_REQUEST

    @property
    def name(self) -> str:
        return f"{self.method} c={self.concurrency}" + (f" at {self.rps}/s" if self.rps else "")


GET_C1, GET_C50, LIST_C50 = (
    Phase("GetReplicas", 1),
    Phase("GetReplicas", 50),
    Phase("ListDeployments", 50),
)
# The same offered rate for both servers, below either's capacity: each does the same batching, so
# CPU per call is the work per call. Flat out, the slower server batches less per wakeup, which
# inflates its CPU per call (and ghz's) beyond the work it adds.
GET_FIXED, LIST_FIXED = (
    Phase("GetReplicas", 50, rps=FIXED_RPS),
    Phase("ListDeployments", 50, rps=FIXED_RPS),
)


@dataclass(frozen=True)
class Sample:
    calls_per_s: float
    p50_s: float
    p99_s: float
    cpu_per_call_s: float
    busy: float  # server CPU seconds per second of the phase: ~1 or more when it is the bottleneck
    client_cpu_per_call_s: float
    load1: float


@dataclass
class Results:
    """Per (server, figure): one value per round; per figure, the load averages seen."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    loads: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    deployment_requests: int = 0
    reply_bytes: dict[str, tuple[int, int]] = field(default_factory=dict)
    replicant_only: list[Row] = field(default_factory=list)

    def add(self, server: str, figure: str, value: float, load1: float) -> None:
        self.values[server, figure].append(value)
        self.loads[figure].append(load1)

    def median_of(self, server: str, figure: str) -> float | None:
        values = self.values.get((server, figure))
        return median(values) if values else None


# -- the machine ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    ticks = bench_stats.cpu_ticks(Path(f"/proc/{pid}/stat").read_text())
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    return bench_stats.rss_bytes(Path(f"/proc/{pid}/status").read_text())


def load1() -> float:
    return bench_stats.load_average(Path("/proc/loadavg").read_text())


def kubectl(kubeconfig: Path, *args: str) -> str:
    result = subprocess.run(
        [str(bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


def deployment_requests(kubeconfig: Path) -> int:
    """Sum of apiserver_request_total for apps/deployments GET and LIST (any client)."""
    total = 0
    for line in kubectl(kubeconfig, "get", "--raw", "/metrics").splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="deployments"' in line
            and 'subresource=""' in line
            and re.search(r'verb="(GET|LIST)"', line)
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


# -- the two servers ------------------------------------------------------------------------


@dataclass
class Server:
    """A server process under load: replicant (the e2e harness) or the bare baseline."""

    name: str
    pid: int
    port: int
    stop: Callable[[], object]
    started_s: float  # spawn -> SERVING (replicant) or -> first served call (baseline)


def reader_channel(pki: Path, port: int) -> Any:
    import grpc

    from tools.server_process import client_credentials

    return grpc.secure_channel(f"127.0.0.1:{port}", client_credentials(pki, "reader"))


def poll_until(what: str, predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(POLL_S)


def start_replicant(kubeconfig: Path, pki: Path, tmp: Path, namespace: str) -> Server:
    """Spawn `python -m server` watching `namespace`; time it to gRPC health SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

    from tools.server_process import start_server

    began = time.monotonic()
    # Its own Lease, so a replicant elsewhere on this cluster cannot be the one reconciling.
    proc: ServerProcess = start_server(
        kubeconfig,
        pki,
        tmp / f"replicant-{namespace}.log",
        namespaces=[namespace],
        extra_args=["--leader-election-namespace", namespace, "--identity", f"bench-{namespace}"],
    )
    check = health_pb2.HealthCheckRequest(service="replicant.v1.ReplicaService")
    try:
        with reader_channel(pki, proc.grpc_port) as chan:
            health = health_pb2_grpc.HealthStub(chan)

            def serving() -> bool:
                try:
                    status = health.Check(check, timeout=5).status
                except grpc.RpcError:
                    return False
                return bool(status == health_pb2.HealthCheckResponse.SERVING)

            poll_until("replicant SERVING", serving, SERVING_TIMEOUT_S)
    except BaseException:
        proc.terminate()
        raise
    return Server(
        REPLICANT, proc.proc.pid, proc.grpc_port, proc.terminate, time.monotonic() - began
    )


def start_baseline(pki: Path, tmp: Path) -> Server:
    """Spawn tools/bench_baseline.py; time it to its first served GetReplicas."""
    from replicant.v1 import replicant_pb2 as pb
    from replicant.v1 import replicant_pb2_grpc

    log = tmp / "baseline.log"
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'gen'}:{REPO_ROOT}"}
    argv = [
        sys.executable, "-m", "tools.bench_baseline", "--namespace", NAMESPACE,
        "--page-size", str(PAGE_SIZE), "--tls-cert-file", str(pki / "server.crt"),
        "--tls-key-file", str(pki / "server.key"), "--client-ca-file", str(pki / "client-ca.crt"),
    ]  # fmt: skip
    began = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)

    def stop() -> int:
        proc.terminate()
        return proc.wait(timeout=30)

    def port() -> int:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("msg") == "serving":
                return int(json.loads(line)["grpc_port"])
        if proc.poll() is not None:
            raise RuntimeError(f"baseline exited:\n{log.read_text()}")
        return 0

    try:
        poll_until("baseline serving", lambda: port() != 0, SERVING_TIMEOUT_S)
        request = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=NAMESPACE, name="x"))
        with reader_channel(pki, port()) as chan:  # it listens once the log says so
            replicant_pb2_grpc.ReplicaServiceStub(chan).GetReplicas(request, timeout=5)
    except BaseException:
        stop()
        raise
    return Server(BASELINE, proc.pid, port(), stop, time.monotonic() - began)


def reply_sizes(server: Server, pki: Path) -> tuple[int, int]:
    """Serialised bytes of the GetReplicas reply and the ListDeployments page, to compare."""
    from replicant.v1 import replicant_pb2 as pb
    from replicant.v1 import replicant_pb2_grpc

    ref = pb.DeploymentRef(namespace=NAMESPACE, name="bench-0500")
    listing = pb.ListDeploymentsRequest(namespace=NAMESPACE, page_size=PAGE_SIZE)
    with reader_channel(pki, server.port) as chan:
        stub = replicant_pb2_grpc.ReplicaServiceStub(chan)
        got = stub.GetReplicas(pb.GetReplicasRequest(ref=ref), timeout=10)
        page = stub.ListDeployments(listing, timeout=10)
    return got.ByteSize(), page.ByteSize()


# -- load phases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    ghz: Path
    protoset: Path
    pki: Path

    def run(self, server: Server, phase: Phase, seconds: float) -> tuple[Sample, dict[str, int]]:
        argv = bench_load.ghz_argv(
            self.ghz, self.protoset, self.pki, server.port,
            method=phase.method, request=phase.request,
            concurrency=phase.concurrency, seconds=seconds, rps=phase.rps,
        )  # fmt: skip
        cpu_before = cpu_seconds(server.pid)
        result = bench_load.run_ghz(argv, seconds)
        cpu = cpu_seconds(server.pid) - cpu_before
        sample = Sample(
            calls_per_s=result.ok / result.seconds,
            p50_s=percentile(result.latencies, 0.5),
            p99_s=percentile(result.latencies, 0.99),
            cpu_per_call_s=cpu / result.ok,
            busy=cpu / result.seconds,
            client_cpu_per_call_s=result.client_cpu_s / result.ok,
            load1=load1(),
        )
        return sample, result.failed


def record(results: Results, server: str, phase: Phase, sample: Sample) -> None:
    name = phase.name
    if phase.rps:
        results.add(server, f"{name} CPU per call", sample.cpu_per_call_s, sample.load1)
        return
    if phase.concurrency > 1:
        results.add(server, f"{name} calls/s", sample.calls_per_s, sample.load1)
        results.add(server, f"{name} CPU per call", sample.cpu_per_call_s, sample.load1)
        results.add(server, f"{name} busy", sample.busy, sample.load1)
        results.add(server, f"{name} ghz CPU", sample.client_cpu_per_call_s, sample.load1)
    if phase.method == "GetReplicas":
        results.add(server, f"{name} p50", sample.p50_s, sample.load1)
        results.add(server, f"{name} p99", sample.p99_s, sample.load1)


def run_round(
    number: int, load: Load, servers: tuple[Server, Server], kubeconfig: Path, results: Results
) -> None:
    ordered = servers if number % 2 == 0 else servers[::-1]  # who goes first alternates
    for server in ordered:
        load.run(server, GET_C50, WARMUP_SECONDS)
    before = deployment_requests(kubeconfig)
    for phase in (GET_C1, GET_C50, LIST_C50, GET_FIXED, LIST_FIXED):
        # At a fixed rate (the CPU-per-call figures the targets are read off) A B B A: two
        # back-to-back pairs a round, the second in reverse, so a load drifting within the round
        # weighs on both servers alike.
        for server in (*ordered, *ordered[::-1]) if phase.rps else ordered:
            sample, failed = load.run(server, phase, PHASE_SECONDS)
            record(results, server.name, phase, sample)
            for status, n in failed.items():
                results.failed_calls[status] += n
    results.deployment_requests += deployment_requests(kubeconfig) - before
    for server in ordered:
        results.add(server.name, "RSS after reads", rss_bytes(server.pid), load1())


# -- replicant only: watch propagation and SetReplicas -> spec ------------------------------


async def watch_propagation(kubeconfig: Path, pki: Path, port: int) -> list[float]:
    """Deployment scaled through the API -> GetReplicas shows it (bounded polls)."""
    import grpc

    from kube import client as kube_client
    from replicant.v1 import replicant_pb2 as pb
    from replicant.v1 import replicant_pb2_grpc
    from tools.server_process import client_credentials

    creds = client_credentials(pki, "reader")
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/bench-0001"
    ref = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=NAMESPACE, name="bench-0001"))
    samples: list[float] = []
    api = await kube_client.connect(str(kubeconfig))
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as chan:
            stub = replicant_pb2_grpc.ReplicaServiceStub(chan)
            for want in _alternating(PROPAGATION_SAMPLES, first=1):
                start = time.perf_counter()
                await api.request(
                    "PATCH", path, body={"spec": {"replicas": want}},
                    content_type="application/merge-patch+json",
                )  # fmt: skip
                for _ in range(100_000):  # bounded poll
                    if (await stub.GetReplicas(ref)).deployment.current.spec_replicas == want:
                        samples.append(time.perf_counter() - start)
                        break
    finally:
        await api.close()
    return samples


async def set_to_spec(pki: Path, port: int) -> list[float] | None:
    """SetReplicas sent -> the Deployment's spec.replicas changed (seen via the watch cache).

    Covers the ReplicaTarget write, its watch event, one reconcile, the scale write and the
    Deployment's watch event. The first (unmeasured) call waits for this process to lead.
    """
    import grpc

    from replicant.v1 import replicant_pb2 as pb
    from replicant.v1 import replicant_pb2_grpc
    from tools.server_process import client_credentials

    ref = pb.DeploymentRef(namespace=NAMESPACE, name="bench-0002")
    samples: list[float] = []
    async with (
        grpc.aio.secure_channel(f"127.0.0.1:{port}", client_credentials(pki, "writer")) as w,
        grpc.aio.secure_channel(f"127.0.0.1:{port}", client_credentials(pki, "reader")) as r,
    ):
        writer = replicant_pb2_grpc.ReplicaServiceStub(w)
        reader = replicant_pb2_grpc.ReplicaServiceStub(r)
        for i, want in enumerate(_alternating(SET_SAMPLES + 1, first=1)):
            start = time.perf_counter()
            await writer.SetReplicas(pb.SetReplicasRequest(ref=ref, replicas=want))
            deadline = start + SET_TIMEOUT_S
            while time.perf_counter() < deadline:  # bounded poll
                got = await reader.GetReplicas(pb.GetReplicasRequest(ref=ref))
                if got.deployment.current.spec_replicas == want:
                    break
                await asyncio.sleep(0.002)
            else:
                return None
            if i:  # sample 0 includes winning the Lease
                samples.append(time.perf_counter() - start)
    return samples


def _alternating(n: int, first: int) -> Iterator[int]:
    """first, 0, first, 0, ...: after an odd count the Deployment is left at `first`."""
    return ((first if i % 2 == 0 else 0) for i in range(n))


def replicant_only_rows(kubeconfig: Path, pki: Path, port: int) -> list[Row]:
    load = f"{load1():.2f}"
    rows = []
    propagation = asyncio.run(watch_propagation(kubeconfig, pki, port))
    rows.append(_latency_row("Watch propagation (scale -> GetReplicas)", propagation, load))
    set_latency = asyncio.run(set_to_spec(pki, port))
    if set_latency is None:
        rows.append(Row("SetReplicas -> Deployment spec", "timed out", load=load))
    else:
        rows.append(_latency_row("SetReplicas -> Deployment spec", set_latency, load))
    return rows


def _latency_row(figure: str, samples: list[float], load: str) -> Row:
    if not samples:
        return Row(figure, "timed out", load=load)
    p50, p99 = percentile(samples, 0.5) * 1e3, percentile(samples, 0.99) * 1e3
    return Row(f"{figure}, p50 / p99 (n={len(samples)})", f"{p50:.1f} / {p99:.1f} ms", load=load)


# -- the run --------------------------------------------------------------------------------


def seed(kubeconfig: Path) -> None:
    from kube import client as kube_client

    async def both() -> None:
        api = await kube_client.connect(str(kubeconfig))
        try:
            await bench_seed.ensure(api, NAMESPACE, COUNT, SEED_TIMEOUT_S)
            await bench_seed.ensure(api, NAMESPACE_10K, COUNT_10K, SEED_TIMEOUT_S)
        finally:
            await api.close()

    asyncio.run(both())
    kubectl(kubeconfig, "apply", "-f", str(CRD_FILE))  # the server watches ReplicaTargets
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/replicatargets.replicant.dev")


def measure(kubeconfig: Path, tmp: Path, rounds: int) -> Results:
    pki = tmp / "pki"
    devcerts.generate(pki)
    load = Load(bin_dir() / "ghz", bench_load.write_protoset(tmp / "replicant.protoset"), pki)
    results = Results()
    began = time.monotonic()
    for number in range(rounds):
        if number and time.monotonic() - began > ROUND_BUDGET_S:
            print(f"time budget spent: {number} rounds", file=sys.stderr)
            break
        print(f"round {number + 1} of {rounds} ...", file=sys.stderr)
        last = number == rounds - 1
        replicant = start_replicant(kubeconfig, pki, tmp, NAMESPACE)
        results.add(REPLICANT, "start 1k", replicant.started_s, load1())
        try:
            baseline = start_baseline(pki, tmp)
            results.add(BASELINE, "start", baseline.started_s, load1())
            try:
                if not results.reply_bytes:
                    results.reply_bytes = {
                        s.name: reply_sizes(s, pki) for s in (replicant, baseline)
                    }
                run_round(number, load, (replicant, baseline), kubeconfig, results)
            finally:
                baseline.stop()
            if last:
                results.replicant_only = replicant_only_rows(kubeconfig, pki, replicant.port)
        finally:
            replicant.stop()
        big = start_replicant(kubeconfig, pki, tmp, NAMESPACE_10K)
        try:
            results.add(REPLICANT, "start 10k", big.started_s, load1())
            results.add(REPLICANT, "RSS 10k", rss_bytes(big.pid), load1())
        finally:
            big.stop()
    return results


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _cpu(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def _mib(size: float) -> str:
    return f"{size / 2**20:.0f} MiB"


def _percent(fraction: float) -> str:
    return f"{fraction:.0%}"


def _rate(rate: float) -> str:
    return f"{rate:,.0f}/s"


def _secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


# figure label, key in Results, formatter, key of the baseline's figure (if not the same)
FIGURES: list[tuple[str, str, Callable[[float], str], str | None]] = [
    (f"GetReplicas CPU per call, {FIXED_RPS:,} calls/s offered (c=50)",
     f"{GET_FIXED.name} CPU per call", _cpu, None),
    (f"ListDeployments (500 of 1,000) CPU per call, {FIXED_RPS:,} calls/s offered (c=50)",
     f"{LIST_FIXED.name} CPU per call", _cpu, None),
    ("GetReplicas CPU per call, c=50", "GetReplicas c=50 CPU per call", _cpu, None),
    ("ListDeployments (500 of 1,000) CPU per call, c=50", "ListDeployments c=50 CPU per call",
     _cpu, None),
    ("GetReplicas calls/s, c=50", "GetReplicas c=50 calls/s", _rate, None),
    ("ListDeployments (500 of 1,000) calls/s, c=50", "ListDeployments c=50 calls/s", _rate, None),
    ("GetReplicas p50, c=1", "GetReplicas c=1 p50", _ms, None),
    ("GetReplicas p99, c=1", "GetReplicas c=1 p99", _ms, None),
    ("GetReplicas p50, c=50", "GetReplicas c=50 p50", _ms, None),
    ("GetReplicas p99, c=50", "GetReplicas c=50 p99", _ms, None),
    ("Start to SERVING, 1,000 Deployments", "start 1k", _secs, "start"),
    ("Start to SERVING, 10,000 Deployments", "start 10k", _secs, "start"),
    ("RSS after the reads (1,000 Deployments)", "RSS after reads", _mib, None),
    ("RSS at SERVING (10,000 Deployments)", "RSS 10k", _mib, "RSS after reads"),
    # Who was the bottleneck: the server near 100% of a core (or more: grpc's own threads), ghz
    # spending less per call than the server.
    ("Server CPU busy (% of a core), GetReplicas c=50", "GetReplicas c=50 busy", _percent, None),
    ("Server CPU busy (% of a core), ListDeployments c=50", "ListDeployments c=50 busy",
     _percent, None),
    ("ghz CPU per call, GetReplicas c=50", "GetReplicas c=50 ghz CPU", _cpu, None),
    ("ghz CPU per call, ListDeployments c=50", "ListDeployments c=50 ghz CPU", _cpu, None),
]  # fmt: skip


def rows(results: Results) -> list[Row]:
    out = []
    for label, key, fmt, baseline_key in FIGURES:
        mine = results.median_of(REPLICANT, key)
        if mine is None:
            continue
        theirs_key = baseline_key or key
        theirs = results.median_of(BASELINE, theirs_key)
        pairs = results.values[REPLICANT, key], results.values.get((BASELINE, theirs_key), [])
        loads = results.loads[key]
        out.append(
            Row(
                label,
                fmt(mine),
                fmt(theirs) if theirs is not None else "n/a",
                times(paired_ratio(*pairs)),
                f"{median(loads):.2f}",
            )
        )
    out.append(Row("API server Deployment GET/LIST during reads", str(results.deployment_requests)))
    return out + results.replicant_only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="default: %(default)s")
    args = parser.parse_args(argv)
    kubeconfig = Path(os.environ.get("KUBECONFIG") or resolve_state_dir(None).admin_kubeconfig)
    began = time.monotonic()
    seed(kubeconfig)
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(kubeconfig, Path(tmp), args.rounds)
    took = time.monotonic() - began
    rounds = len(results.values.get((REPLICANT, "start 1k"), []))
    print(
        f"\nreplicant bench: {COUNT:,} Deployments (start and RSS also at {COUNT_10K:,}), mTLS "
        f"(TLS 1.3), ghz load, {PHASE_SECONDS:.0f} s per phase, median of {rounds} interleaved "
        f"rounds, {os.cpu_count()} CPUs\n"
    )
    print(bench_stats.format_table(rows(results)))
    sizes = results.reply_bytes
    print(
        f"\nratio = median over the back-to-back pairs of replicant / baseline. Reply bytes "
        f"(GetReplicas, List page): replicant {sizes[REPLICANT]}, baseline {sizes[BASELINE]}."
        f"\nCalls failed: "
        f"{dict(results.failed_calls)} (ghz ends the calls in flight at a phase's end: "
        f"Unavailable). Watch and Set rows: replicant only. Took {took:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

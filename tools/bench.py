"""`make bench`: read throughput/latency over mTLS, API server load during reads, watch latency.

Runs against the local control plane (`make cluster-up`; KUBECONFIG wins if set). It keeps 1,000
Deployments (replicas 0, so no pods) in namespace replicant-bench between runs, starts
`python -m server` as its own process, and prints one table:

  * GetReplicas and ListDeployments (page_size 500 of the 1,000) at concurrency 1 and 50:
    calls/s, p50, p99, over mutual TLS (TLS 1.3);
  * API server requests for Deployments (GET/LIST) during the read load, from the API server's
    apiserver_request_total: must be 0 (reads are served from the watch cache);
  * watch propagation: Deployment scaled through the API -> visible via GetReplicas, p50/p99;
  * SetReplicas -> Deployment spec.replicas updated (via the reconciler), p50/p99.

Bounded: every phase is time-boxed; the whole run takes well under two minutes once the
Deployments exist (the first run spends ~20 s creating them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server import cipher_policy

cipher_policy.apply()  # before grpc is imported (below, lazily)

from tools import devcerts  # noqa: E402
from tools.cluster.paths import bin_dir, resolve_state_dir  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

NAMESPACE = "replicant-bench"
COUNT = 1000
PHASE_SECONDS = 5.0
PROPAGATION_SAMPLES = 30
SET_SAMPLES = 30  # even, so bench-0002 ends at 0 replicas
SET_TIMEOUT_S = 30.0
CRD_FILE = (
    Path(__file__).resolve().parents[1] / "charts/replicant/files/replicatargets.replicant.dev.yaml"
)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return result.stdout


def ensure_deployments(kubeconfig: Path) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):  # exists already
        kubectl(kubeconfig, "create", "namespace", NAMESPACE)
    have = kubectl(kubeconfig, "get", "deployments", "-n", NAMESPACE, "-o", "name").split()
    if len(have) >= COUNT:
        return
    items = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"bench-{i:04d}", "namespace": NAMESPACE},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": f"bench-{i:04d}"}},
                "template": {
                    "metadata": {"labels": {"app": f"bench-{i:04d}"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        }
        for i in range(COUNT)
    ]
    print(f"creating {COUNT} Deployments in {NAMESPACE} (once) ...", file=sys.stderr)
    kubectl(
        kubeconfig,
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )


def deployment_requests(kubeconfig: Path) -> int:
    """Sum of apiserver_request_total for apps/deployments GET and LIST (any client)."""
    text = kubectl(kubeconfig, "get", "--raw", "/metrics")
    total = 0
    for line in text.splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="deployments"' in line
            and 'subresource=""' in line
            and re.search(r'verb="(GET|LIST)"', line)
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(call: Callable[[], Awaitable[Any]], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.monotonic() + PHASE_SECONDS

    async def worker() -> None:
        for _ in range(10_000_000):  # bounded by the deadline
            if time.monotonic() >= deadline:
                return
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.monotonic() - began), latencies


async def measure_set_replicas_latency(reader: Any, pki: Path, port: int) -> list[float] | None:
    """SetReplicas sent -> the Deployment's spec.replicas changed (seen via the watch cache).

    Covers the ReplicaTarget write, its watch event, one reconcile, the scale write and the
    Deployment's watch event. The first (unmeasured) call waits for this process to lead.
    """
    import grpc

    from replicant.v1 import replicant_pb2 as pb
    from replicant.v1 import replicant_pb2_grpc

    creds = grpc.ssl_channel_credentials(
        (pki / "ca.crt").read_bytes(),
        (pki / "writer.key").read_bytes(),
        (pki / "writer.crt").read_bytes(),
    )
    ref = pb.DeploymentRef(namespace=NAMESPACE, name="bench-0002")
    samples: list[float] = []
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as chan:
        writer = replicant_pb2_grpc.ReplicaServiceStub(chan)
        for i in range(SET_SAMPLES + 1):
            want = 1 - (i % 2)  # 1, 0, 1, ...: ends at 0 after an even count of samples
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


async def run(kubeconfig: Path, pki: Path, port: int) -> list[tuple[str, str, str, str]]:
    import grpc

    from kube import client as kube_client
    from replicant.v1 import replicant_pb2 as pb
    from replicant.v1 import replicant_pb2_grpc

    creds = grpc.ssl_channel_credentials(
        (pki / "ca.crt").read_bytes(),
        (pki / "reader.key").read_bytes(),
        (pki / "reader.crt").read_bytes(),
    )
    rows: list[tuple[str, str, str, str]] = []
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as chan:
        stub = replicant_pb2_grpc.ReplicaServiceStub(chan)
        get = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=NAMESPACE, name="bench-0500"))
        listing = pb.ListDeploymentsRequest(namespace=NAMESPACE, page_size=500)
        await stub.GetReplicas(get)  # warm the connection
        before = await asyncio.to_thread(deployment_requests, kubeconfig)
        for name, call in (
            ("GetReplicas", lambda: stub.GetReplicas(get)),
            ("ListDeployments (500 of 1,000)", lambda: stub.ListDeployments(listing)),
        ):
            for concurrency in (1, 50):
                rate, lat = await load(call, concurrency)
                rows.append(
                    (
                        f"{name} c={concurrency}",
                        f"{rate:,.0f}/s",
                        f"{pct(lat, 0.5):.2f} ms",
                        f"{pct(lat, 0.99):.2f} ms",
                    )
                )
        after = await asyncio.to_thread(deployment_requests, kubeconfig)
        rows.append(("API server Deployment GET/LIST during reads", str(after - before), "", ""))

        api = await kube_client.connect(str(kubeconfig))
        try:
            samples = []
            path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/bench-0001"
            ref = pb.GetReplicasRequest(
                ref=pb.DeploymentRef(namespace=NAMESPACE, name="bench-0001")
            )
            for i in range(PROPAGATION_SAMPLES):
                want = (i % 2) + 1
                start = time.perf_counter()
                await api.request(
                    "PATCH",
                    path,
                    body={"spec": {"replicas": want}},
                    content_type="application/merge-patch+json",
                )
                for _ in range(100_000):  # bounded poll
                    if (await stub.GetReplicas(ref)).deployment.current.spec_replicas == want:
                        break
                samples.append(time.perf_counter() - start)
            await api.request(
                "PATCH",
                path,
                body={"spec": {"replicas": 0}},
                content_type="application/merge-patch+json",
            )
        finally:
            await api.close()
        rows.append(
            (
                "Watch propagation (scale -> GetReplicas)",
                f"n={len(samples)}",
                f"{pct(samples, 0.5):.1f} ms",
                f"{pct(samples, 0.99):.1f} ms",
            )
        )
        set_latency = await measure_set_replicas_latency(stub, pki, port)
        if set_latency is None:
            rows.append(("SetReplicas -> Deployment spec", "timed out", "", ""))
        else:
            rows.append(
                (
                    "SetReplicas -> Deployment spec",
                    f"n={len(set_latency)}",
                    f"{pct(set_latency, 0.5):.1f} ms",
                    f"{pct(set_latency, 0.99):.1f} ms",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.parse_args(argv)
    kubeconfig = Path(os.environ.get("KUBECONFIG") or resolve_state_dir(None).admin_kubeconfig)
    ensure_deployments(kubeconfig)
    kubectl(kubeconfig, "apply", "-f", str(CRD_FILE))  # the server watches ReplicaTargets
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/replicatargets.replicant.dev")
    from tools.server_process import eventually, start_server

    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp, "pki")
        devcerts.generate(pki)
        # Its own Lease, so a replicant elsewhere on this cluster cannot be the one reconciling.
        server = start_server(
            kubeconfig,
            pki,
            Path(tmp, "server.log"),
            namespaces=[NAMESPACE],
            extra_args=["--leader-election-namespace", NAMESPACE, "--identity", "bench"],
        )
        try:
            eventually("server ready", lambda: server.http("/readyz")[0] == 200, 60)
            started = time.monotonic()
            rows = asyncio.run(run(kubeconfig, pki, server.grpc_port))
            took = time.monotonic() - started
        finally:
            server.terminate()
    header = ("measurement", "throughput", "p50", "p99")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    setup = f"{COUNT} Deployments, mTLS (TLS 1.3), {PHASE_SECONDS:.0f} s per load phase"
    print(f"\nreplicant bench: {setup}, {os.cpu_count()} CPUs")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
    print(f"(measured in {took:.0f} s; client and server are separate processes on this host)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

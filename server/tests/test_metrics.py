"""RPC counts are plain numbers on the hot path; scraped, they read as prometheus_client's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from server.metrics import BUCKETS, Metrics

# Durations on, between, below and above the bucket bounds (le is inclusive).
CALLS = [
    ("replicant.v1.ReplicaService/GetReplicas", "OK", 0.0004),
    ("replicant.v1.ReplicaService/GetReplicas", "OK", 0.0005),
    ("replicant.v1.ReplicaService/GetReplicas", "NOT_FOUND", 0.0031),
    ("replicant.v1.ReplicaService/SetReplicas", "OK", 0.25),
    ("replicant.v1.ReplicaService/SetReplicas", "ABORTED", 7.5),
    ("replicant.v1.ReplicaService/ListDeployments", "OK", 5.0),
]


def rpc_lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if "replicant_grpc_request" in line)


def test_rpc_metrics_expose_exactly_what_prometheus_clients_counter_and_histogram_would() -> None:
    ours = CollectorRegistry()
    metrics = Metrics(ours)
    oracle = CollectorRegistry()
    requests = Counter(
        "replicant_grpc_requests", "gRPC requests by method, code.", ["method", "code"],
        registry=oracle,
    )  # fmt: skip
    latency = Histogram(
        "replicant_grpc_request_duration_seconds", "gRPC request latency by method.", ["method"],
        buckets=BUCKETS, registry=oracle,
    )  # fmt: skip
    for method, code, seconds in CALLS:
        metrics.observe_rpc(method, code, seconds)
        requests.labels(method, code).inc()
        latency.labels(method).observe(seconds)
    expected = [line for line in rpc_lines(oracle) if "_created" not in line]
    assert rpc_lines(ours) == expected
    get = 'method="replicant.v1.ReplicaService/GetReplicas"'
    # 0.0004 and 0.0005: a duration on a bound is counted in that bucket.
    assert f'replicant_grpc_request_duration_seconds_bucket{{le="0.0005",{get}}} 2.0' in expected

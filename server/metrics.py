"""The API's Prometheus metrics (requirement: production-ready, observable), on a registry the
composition root owns, so two Apps in one process (tests) stay apart.

    replicant_grpc_requests_total{method,code}            counter
    replicant_grpc_request_duration_seconds{method}       histogram
    replicant_client_refusals_total{reason}               counter: client certificates refused
    replicant_cache_objects{resource}                     gauge: objects in the watch cache
    replicant_apiserver_probe_failures_total              counter
    replicant_cache_age_seconds                           gauge: now minus the answers' as_of

The first three are prometheus_client's Counter and Histogram. The others are owned by the
informers, the probe and readiness, so a collector reads them when scraped (prometheus_client's
custom-collector API). The reconciler's metrics are listed in reconciler/metrics.py.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from kube.informer import Informer
    from kube.probe import ApiServerProbe
    from server.health import Readiness

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        caches: Sequence[Informer[Any]],
        probe: ApiServerProbe,
        readiness: Readiness,
    ) -> None:
        self._requests = Counter(
            "replicant_grpc_requests",
            "gRPC requests by method, code.",
            ["method", "code"],
            registry=registry,
        )
        self._latency = Histogram(
            "replicant_grpc_request_duration_seconds",
            "gRPC request latency by method.",
            ["method"],
            buckets=BUCKETS,
            registry=registry,
        )
        self._refusals = Counter(
            "replicant_client_refusals",
            "Client certificates refused at a call, by reason.",
            ["reason"],
            registry=registry,
        )
        self._rpc_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._caches = caches
        self._probe = probe
        self._readiness = readiness
        registry.register(self)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        if (children := self._rpc_children.get((method, code))) is None:
            children = (self._requests.labels(method, code), self._latency.labels(method))
            self._rpc_children[method, code] = children  # labels() locks and checks: once
        children[0].inc()
        children[1].observe(seconds)

    def observe_refusal(self, reason: str) -> None:
        self._refusals.labels(reason).inc()

    def collect(self) -> Iterator[Metric]:
        """The figures read from their owners when scraped."""
        by_resource: dict[str, list[Informer[Any]]] = defaultdict(list)
        for source in self._caches:
            by_resource[source.resource].append(source)
        objects = GaugeMetricFamily(
            "replicant_cache_objects", "Objects in the watch cache.", labels=["resource"]
        )
        for resource, sources in sorted(by_resource.items()):
            objects.add_metric([resource], sum(len(s) for s in sources))
        yield objects
        yield CounterMetricFamily(
            "replicant_apiserver_probe_failures", "Failed probes.", value=self._probe.failures
        )
        if (age := self._readiness.age_seconds()) is not None:  # none until the caches synced
            help_text = "Seconds since the read caches last heard from the API server."
            yield GaugeMetricFamily("replicant_cache_age_seconds", help_text, value=round(age, 3))

"""The API's Prometheus metrics (requirement: production-ready, observable), on a registry the
composition root owns, so two Apps in one process (tests) stay apart.

    replicant_grpc_requests_total{method,code}            counter
    replicant_grpc_request_duration_seconds{method}       histogram
    replicant_client_refusals_total{reason}               counter: client certificates refused
    replicant_cache_objects{resource}                     gauge: objects in the watch cache
    replicant_watch_restarts_total{resource}              counter: watches reopened
    replicant_relists_total{resource}                     counter: relists forced by 410 Gone
    replicant_list_watch_errors_total{resource}           counter: failed lists/watches (backed off)
    replicant_apiserver_probe_failures_total              counter
    replicant_cache_age_seconds                           gauge: now minus the answers' as_of

The first three are prometheus_client's Counter and Histogram. The others are owned by the
informers, the probe and readiness, so a collector reads them when scraped (prometheus_client's
custom-collector API). The reconciler's metrics are listed in reconciler/metrics.py.
TODO: count TLS handshakes refused before any call if grpcio ever exposes a handshake callback.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from kube.informer import Informer

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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
        self._caches: list[Informer[Any]] = []
        self.probe_failures: Callable[[], int] = lambda: 0
        self.cache_age: Callable[[], float | None] = lambda: None
        registry.register(self)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        if (children := self._rpc_children.get((method, code))) is None:
            children = (self._requests.labels(method, code), self._latency.labels(method))
            self._rpc_children[method, code] = children  # labels() locks and checks: once
        children[0].inc()
        children[1].observe(seconds)

    def observe_refusal(self, reason: str) -> None:
        self._refusals.labels(reason).inc()

    def add_cache(self, informer: Informer[Any]) -> None:
        self._caches.append(informer)

    def collect(self) -> Iterator[Metric]:
        """The figures read from their owners when scraped."""
        by_resource: dict[str, list[Informer[Any]]] = defaultdict(list)
        for source in self._caches:
            by_resource[source.resource].append(source)
        for name, family, help_text, value in _CACHE_FAMILIES:
            metric = family(name, help_text, labels=["resource"])
            for resource, sources in sorted(by_resource.items()):
                metric.add_metric([resource], value(sources))
            yield metric
        yield CounterMetricFamily(
            "replicant_apiserver_probe_failures", "Failed probes.", value=self.probe_failures()
        )
        if (age := self.cache_age()) is not None:  # absent until the caches have synced
            help_text = "Seconds since the read caches last heard from the API server."
            yield GaugeMetricFamily("replicant_cache_age_seconds", help_text, value=round(age, 3))


_Family = type[GaugeMetricFamily] | type[CounterMetricFamily]
_CACHE_FAMILIES: tuple[tuple[str, _Family, str, Callable[[list[Informer[Any]]], int]], ...] = (
    (
        "replicant_cache_objects",
        GaugeMetricFamily,
        "Objects in the watch cache.",
        lambda sources: sum(len(s) for s in sources),
    ),
    (
        "replicant_watch_restarts",
        CounterMetricFamily,
        "Watches reopened.",
        lambda sources: sum(s.stats.watch_restarts for s in sources),
    ),
    (
        "replicant_relists",
        CounterMetricFamily,
        "Relists forced by 410 Gone.",
        lambda sources: sum(s.stats.relists for s in sources),
    ),
    (
        "replicant_list_watch_errors",
        CounterMetricFamily,
        "Failed lists/watches.",
        lambda sources: sum(s.stats.errors for s in sources),
    ),
)

"""The API's Prometheus metrics, on a prometheus_client registry the composition root owns.

    replicant_grpc_requests_total{method,code}            counter
    replicant_grpc_request_duration_seconds{method}       histogram (_bucket{le}, _sum, _count)
    replicant_cache_objects{resource}                     gauge: objects in the watch cache
    replicant_cache_synced{resource}                      gauge: 1 when every informer is synced
    replicant_watch_restarts_total{resource}              counter: watches reopened
    replicant_relists_total{resource}                     counter: relists forced by 410 Gone
    replicant_list_watch_errors_total{resource}           counter: failed lists/watches (backed off)
    replicant_apiserver_probe_failures_total              counter
    replicant_client_refusals_total{stage,reason}         counter: clients refused at the TLS
                                                          handshake or at a call
    replicant_ready                                       gauge: same truth as /readyz
    replicant_cache_age_seconds                           gauge: now minus the answers' as_of

The reconciler's (results, duration, queue depth, leader) are listed in reconciler/metrics.py.

Why a registry per App, not prometheus_client's global one: two Apps in one process (tests) must
not collide. The hot path (`observe_rpc`) only adds to plain per-method counts: prometheus_client's
Counter and Histogram children take a lock each and cost a read 5 us of CPU under load, these 2 us
(issue 14); everything here runs on the event loop. Those counts, and every figure owned by
someone else (informers, probe, readiness, the handshake tap), are turned into metric families by
`Metrics.collect` when scraped, so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from kube.informer import InformerStats

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BUCKET_LABELS = (*map(floatToGoString, BUCKETS), "+Inf")  # as prometheus_client writes `le`


@dataclass(frozen=True)
class CacheSource:
    """How to read one informer's figures at scrape time."""

    resource: str
    size: Callable[[], int]
    synced: Callable[[], bool]
    stats: InformerStats


class Metrics:
    """Counters the interceptor bumps, plus a collector for the figures owned elsewhere."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Per method: calls by code, and the latency histogram's buckets and sum (`observe_rpc`).
        self._rpcs: dict[str, _MethodCalls] = {}
        self._caches: list[CacheSource] = []
        # Call refusals share one family with the handshake ones, which are counted outside the
        # event loop (server/handshake_log.py), so this family is collected at scrape time too.
        self._refusals: dict[tuple[str, str], int] = defaultdict(int)
        self.handshake_refusals: Callable[[], Mapping[str, int]] = dict
        self.probe_failures: Callable[[], int] = lambda: 0
        self.ready: Callable[[], bool] = lambda: False
        self.cache_age: Callable[[], float | None] = lambda: None
        registry.register(self)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        calls = self._rpcs.get(method)
        if calls is None:
            calls = self._rpcs[method] = _MethodCalls()
        calls.codes[code] += 1
        calls.buckets[bisect_left(BUCKETS, seconds)] += 1  # le is inclusive: bisect_left
        calls.seconds += seconds

    def observe_refusal(self, stage: str, reason: str) -> None:
        self._refusals[(stage, reason)] += 1

    def add_cache(self, source: CacheSource) -> None:
        self._caches.append(source)

    def collect(self) -> Iterator[Metric]:
        """The figures read from their owners when scraped (prometheus_client's collector API)."""
        yield from self._rpc_families()
        by_resource: dict[str, list[CacheSource]] = defaultdict(list)
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
        refusals = CounterMetricFamily(
            "replicant_client_refusals",
            "Clients refused, by stage (handshake, call) and reason.",
            labels=["stage", "reason"],
        )
        counts = dict(self._refusals)
        counts.update((("handshake", r), n) for r, n in self.handshake_refusals().items())
        for (stage, reason), count in sorted(counts.items()):
            refusals.add_metric([stage, reason], count)
        yield refusals
        yield GaugeMetricFamily(
            "replicant_ready", "1 when ready to serve (same as /readyz).", value=int(self.ready())
        )
        if (age := self.cache_age()) is not None:  # absent until the caches have synced
            help_text = "Seconds since the read caches last heard from the API server."
            yield GaugeMetricFamily("replicant_cache_age_seconds", help_text, value=round(age, 3))

    def _rpc_families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "replicant_grpc_requests", "gRPC requests by method, code.", labels=["method", "code"]
        )
        latency = HistogramMetricFamily(
            "replicant_grpc_request_duration_seconds",
            "gRPC request latency by method.",
            labels=["method"],
        )
        for method, calls in sorted(self._rpcs.items()):
            for code, count in sorted(calls.codes.items()):
                requests.add_metric([method, code], count)
            cumulative = zip(_BUCKET_LABELS, itertools.accumulate(calls.buckets), strict=True)
            latency.add_metric([method], buckets=list(cumulative), sum_value=calls.seconds)
        yield requests
        yield latency


@dataclass
class _MethodCalls:
    codes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))  # last: +Inf
    seconds: float = 0.0


def _size(sources: list[CacheSource]) -> int:
    return sum(s.size() for s in sources)


def _synced(sources: list[CacheSource]) -> int:
    return int(all(s.synced() for s in sources))


def _restarts(sources: list[CacheSource]) -> int:
    return sum(s.stats.watch_restarts for s in sources)


def _relists(sources: list[CacheSource]) -> int:
    return sum(s.stats.relists for s in sources)


def _errors(sources: list[CacheSource]) -> int:
    return sum(s.stats.errors for s in sources)


_Family = type[GaugeMetricFamily] | type[CounterMetricFamily]
_CACHE_FAMILIES: tuple[tuple[str, _Family, str, Callable[[list[CacheSource]], int]], ...] = (
    ("replicant_cache_objects", GaugeMetricFamily, "Objects in the watch cache.", _size),
    ("replicant_cache_synced", GaugeMetricFamily, "1 when every informer is synced.", _synced),
    ("replicant_watch_restarts", CounterMetricFamily, "Watches reopened.", _restarts),
    ("replicant_relists", CounterMetricFamily, "Relists forced by 410 Gone.", _relists),
    ("replicant_list_watch_errors", CounterMetricFamily, "Failed lists/watches.", _errors),
)

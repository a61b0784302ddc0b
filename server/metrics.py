"""Prometheus metrics in the text exposition format (0.0.4), written by hand to avoid a dependency.

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

Cache figures are read from the informers when scraped, so the hot path only touches two dicts.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from kube.informer import InformerStats

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: int = 0
    sum: float = 0.0

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            self.counts[index] += 1
        self.total += 1
        self.sum += seconds


@dataclass(frozen=True)
class CacheSource:
    """How to read one informer's figures at scrape time."""

    resource: str
    size: Callable[[], int]
    synced: Callable[[], bool]
    stats: InformerStats


class Metrics:
    def __init__(self) -> None:
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[str, _Histogram] = defaultdict(_Histogram)
        self._caches: list[CacheSource] = []
        self._refusals: dict[tuple[str, str], int] = defaultdict(int)
        # Handshake refusals are counted outside the event loop (server/handshake_log.py).
        self.handshake_refusals: Callable[[], Mapping[str, int]] = dict
        self.probe_failures: Callable[[], int] = lambda: 0
        self.ready: Callable[[], bool] = lambda: False
        self.cache_age: Callable[[], float | None] = lambda: None

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        self._requests[(method, code)] += 1
        self._latency[method].observe(seconds)

    def observe_refusal(self, stage: str, reason: str) -> None:
        self._refusals[(stage, reason)] += 1

    def add_cache(self, source: CacheSource) -> None:
        self._caches.append(source)

    def render(self) -> str:
        out: list[str] = []
        _header(out, "replicant_grpc_requests_total", "counter", "gRPC requests by method, code.")
        for (method, code), count in sorted(self._requests.items()):
            out.append(f"replicant_grpc_requests_total{_labels(method=method, code=code)} {count}")
        name = "replicant_grpc_request_duration_seconds"
        _header(out, name, "histogram", "gRPC request latency by method.")
        for method, hist in sorted(self._latency.items()):
            cumulative = 0
            for bound, count in zip(BUCKETS, hist.counts, strict=True):
                cumulative += count
                out.append(f"{name}_bucket{_labels(method=method, le=repr(bound))} {cumulative}")
            out.append(f"{name}_bucket{_labels(method=method, le='+Inf')} {hist.total}")
            out.append(f"{name}_sum{_labels(method=method)} {hist.sum!r}")
            out.append(f"{name}_count{_labels(method=method)} {hist.total}")
        self._render_caches(out)
        _header(out, "replicant_apiserver_probe_failures_total", "counter", "Failed probes.")
        out.append(f"replicant_apiserver_probe_failures_total {self.probe_failures()}")
        self._render_refusals(out)
        _header(out, "replicant_ready", "gauge", "1 when ready to serve (same as /readyz).")
        out.append(f"replicant_ready {int(self.ready())}")
        if (age := self.cache_age()) is not None:  # absent until the caches have synced
            help_text = "Seconds since the read caches last heard from the API server."
            _header(out, "replicant_cache_age_seconds", "gauge", help_text)
            out.append(f"replicant_cache_age_seconds {round(age, 3)!r}")
        return "\n".join(out) + "\n"

    def _render_refusals(self, out: list[str]) -> None:
        name = "replicant_client_refusals_total"
        _header(out, name, "counter", "Clients refused, by stage (handshake, call) and reason.")
        counts = dict(self._refusals)
        for reason, count in self.handshake_refusals().items():
            counts[("handshake", reason)] = count
        for (stage, reason), count in sorted(counts.items()):
            out.append(f"{name}{_labels(stage=stage, reason=reason)} {count}")

    def _render_caches(self, out: list[str]) -> None:
        by_resource: dict[str, list[CacheSource]] = defaultdict(list)
        for source in self._caches:
            by_resource[source.resource].append(source)
        families = [
            ("replicant_cache_objects", "gauge", "Objects in the watch cache.", _size),
            ("replicant_cache_synced", "gauge", "1 when every informer is synced.", _synced),
            ("replicant_watch_restarts_total", "counter", "Watches reopened.", _restarts),
            ("replicant_relists_total", "counter", "Relists forced by 410 Gone.", _relists),
            ("replicant_list_watch_errors_total", "counter", "Failed lists/watches.", _errors),
        ]
        for name, kind, help_text, value in families:
            _header(out, name, kind, help_text)
            for resource, sources in sorted(by_resource.items()):
                out.append(f"{name}{_labels(resource=resource)} {value(sources)}")


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


def _header(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"

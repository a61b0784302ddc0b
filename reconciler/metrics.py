"""The reconciler's Prometheus metrics, shaped like controller-runtime's and client-go's.

Requirement: every reconcile branch is counted. replicant_reconcile_total{result} (success,
error, requeue_after, terminal), replicant_reconcile_time_seconds and
replicant_leader_election_master_status. Every series exists from the start (zero on a
follower), so `rate()` sees zeros, not a missing series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

CONTROLLER: Final = "replicatarget"
# controller-runtime's reconcile_time_seconds buckets stop at 60 s; ours are API round trips.
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# terminal: a failure only a person can fix, not retried (controller-runtime's TerminalError).
ReconcileResult = Literal["success", "error", "requeue_after", "terminal"]
RESULTS: Final[tuple[ReconcileResult, ...]] = ("success", "error", "requeue_after", "terminal")


class ReconcilerMetrics:
    """What the controller and the leader elector report; built on the App's registry."""

    def __init__(self, registry: CollectorRegistry, *, lease: str) -> None:
        reconciles = Counter(
            "replicant_reconcile",
            "Reconciles by result (success, error, requeue_after, terminal).",
            ["controller", "result"],
            registry=registry,
        )
        self._results = {result: reconciles.labels(CONTROLLER, result) for result in RESULTS}
        self._time = Histogram(
            "replicant_reconcile_time_seconds",
            "Time of one reconcile, whatever its result.",
            ["controller"],
            buckets=BUCKETS,
            registry=registry,
        ).labels(CONTROLLER)
        self._leader = Gauge(
            "replicant_leader_election_master_status",
            "1 while this replica holds the Lease and reconciles, else 0.",
            ["name"],
            registry=registry,
        ).labels(lease)

    def observe_reconcile(self, result: ReconcileResult, seconds: float) -> None:
        self._results[result].inc()
        self._time.observe(seconds)

    def set_leading(self, leading: bool) -> None:
        self._leader.set(1 if leading else 0)

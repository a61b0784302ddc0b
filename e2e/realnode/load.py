"""Steady GetReplicas load through a Service over mTLS, with every call's outcome kept.

Calls start on a fixed schedule (not when the previous one returns), round-robin over
a few channels: each channel is one TCP connection that kube-proxy sends to one pod,
so the load spreads over the pods as a fleet of clients would.

Retry policy, as e2e/test_rolling_restart.py: one retry, on the next channel, for
UNAVAILABLE and CANCELLED. grpc core answers CANCELLED to a call that reaches a server
in the instant its shutdown begins (grpc/grpc#41785); this client never cancels. A
call counts as failed when the retry fails too; first attempts that failed are
reported as `retried`, by code, so the raw figure stays visible.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from replicant.v1 import replicant_pb2, replicant_pb2_grpc

if TYPE_CHECKING:
    from pathlib import Path

INTERVAL_S = 0.02  # 50 calls per second
CHANNELS = 4
CALL_TIMEOUT_S = 2.0


RETRYABLE = ("UNAVAILABLE", "CANCELLED")


def code_name(error: BaseException | None) -> str:
    if error is None:
        return "OK"
    code = getattr(error, "code", None)
    status = code() if callable(code) else None
    return status.name if isinstance(status, grpc.StatusCode) else type(error).__name__


@dataclass
class Outcomes:
    """(start, end, code name) per call, in completion order."""

    calls: list[tuple[float, float, str]] = field(default_factory=list)
    retried: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_retry(self, code: str) -> None:
        with self.lock:
            self.retried[code] = self.retried.get(code, 0) + 1

    def add(self, start: float, code: str) -> None:
        with self.lock:
            self.calls.append((start, time.monotonic(), code))

    def summary(self) -> Summary:
        with self.lock:
            calls = sorted(self.calls)
        ok_ends = sorted(end for _, end, code in calls if code == "OK")
        gaps = [b - a for a, b in itertools.pairwise(ok_ends)]
        failed: dict[str, int] = {}
        for _, _, code in calls:
            if code != "OK":
                failed[code] = failed.get(code, 0) + 1
        span = calls[-1][0] - calls[0][0] if len(calls) > 1 else 0.0
        latencies = sorted(end - start for start, end, code in calls if code == "OK")
        p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0
        return Summary(
            len(calls), sum(failed.values()), failed, dict(self.retried),
            max(gaps, default=0.0), span, p99,
        )  # fmt: skip


@dataclass(frozen=True)
class Summary:
    calls: int
    failed: int
    failed_by_code: dict[str, int]
    retried_by_code: dict[str, int]
    longest_gap_s: float
    duration_s: float
    p99_latency_s: float

    @property
    def rate(self) -> float:
        return self.calls / self.duration_s if self.duration_s else 0.0

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.calls} calls in {self.duration_s:.1f}s ({self.rate:.0f}/s), "
            f"{self.failed} failed{_by_code(self.failed_by_code)}, "
            f"{sum(self.retried_by_code.values())} retried{_by_code(self.retried_by_code)}, "
            f"longest gap between answers "
            f"{self.longest_gap_s * 1000:.0f} ms, p99 latency {self.p99_latency_s * 1000:.0f} ms"
        )


def _by_code(counts: dict[str, int]) -> str:
    return f" {counts}" if counts else ""


class Load:
    """Runs in a thread between start() and stop(); outcomes in .outcomes."""

    def __init__(self, address: str, server_name: str, pki: Path, namespace: str, name: str):
        credentials = grpc.ssl_channel_credentials(
            (pki / "ca.crt").read_bytes(),
            (pki / "reader.key").read_bytes(),
            (pki / "reader.crt").read_bytes(),
        )
        options = [
            ("grpc.ssl_target_name_override", server_name),
            # Distinct channels, distinct connections (grpc would share one otherwise).
            ("grpc.use_local_subchannel_pool", 1),
        ]
        self.channels = [
            grpc.secure_channel(address, credentials, options=[*options, ("x-n", n)])
            for n in range(CHANNELS)
        ]
        self.stubs = [replicant_pb2_grpc.ReplicaServiceStub(c) for c in self.channels]
        self.request = replicant_pb2.GetReplicasRequest(
            ref=replicant_pb2.DeploymentRef(namespace=namespace, name=name)
        )
        self.outcomes = Outcomes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _call(self, index: int, start: float | None = None, retry: bool = True) -> None:
        start = time.monotonic() if start is None else start
        future = self.stubs[index % CHANNELS].GetReplicas.future(
            self.request, timeout=CALL_TIMEOUT_S
        )

        def done(call: grpc.Future[replicant_pb2.GetReplicasResponse]) -> None:
            code = code_name(call.exception())
            if retry and code in RETRYABLE:
                self.outcomes.add_retry(code)
                self._call(index + 1, start, retry=False)
                return
            self.outcomes.add(start, code)

        future.add_done_callback(done)

    def _run(self) -> None:
        begin, index = time.monotonic(), 0
        while not self._stop.is_set():
            self._call(index)
            index += 1
            delay = begin + index * INTERVAL_S - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> Summary:
        self._stop.set()
        self._thread.join(timeout=10)
        time.sleep(CALL_TIMEOUT_S + 0.5)  # let the last calls finish or time out
        for channel in self.channels:
            channel.close()
        return self.outcomes.summary()

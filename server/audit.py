"""The audit trail of ReplicaService calls, as JSON lines on the "replicant.access" logger.

Why not one line per call: formatting and writing a line cost a read more CPU than the rest of the
call (issue 14). What an audit needs is kept line by line: every write, every refusal
(UNAUTHENTICATED, PERMISSION_DENIED) and every other non-OK answer is written at once, with the
identity, method, code and duration. Successful reads are summed per (identity, method) and written
as one "reads" line per interval (count, total and longest duration) by `run`, and by `flush` on
shutdown (server/app.py). Only authorized identities read successfully, so the sums stay as few as
the configured grants.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import grpc

log = logging.getLogger("replicant.access")

FLUSH_INTERVAL_S: Final = 10.0


class AccessLog:
    def __init__(self, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.interval_s = interval_s
        # (identity, method) -> [count, total seconds, longest seconds]
        self._reads: dict[tuple[str, str], list[float]] = {}

    def call(self, identity: str, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """One line now: a write, a refusal or an error."""
        log.info(
            "rpc",
            extra={
                "identity": identity,
                "method": method,
                "code": code.name,
                "duration_ms": round(seconds * 1000, 3),
            },
        )

    def read(self, identity: str, method: str, seconds: float) -> None:
        """A successful read: summed into the next "reads" line."""
        sums = self._reads.get((identity, method))
        if sums is None:
            self._reads[(identity, method)] = [1, seconds, seconds]
            return
        sums[0] += 1
        sums[1] += seconds
        if seconds > sums[2]:
            sums[2] = seconds

    def flush(self) -> None:
        """One "reads" line per (identity, method) read since the last flush."""
        reads, self._reads = self._reads, {}
        for (identity, method), (count, total, longest) in reads.items():
            log.info(
                "reads",
                extra={
                    "identity": identity,
                    "method": method,
                    "code": "OK",
                    "count": int(count),
                    "total_ms": round(total * 1000, 3),
                    "max_ms": round(longest * 1000, 3),
                },
            )

    async def run(self) -> None:
        """Flush every interval, until cancelled (the last flush is the app's, on shutdown)."""
        while True:
            await asyncio.sleep(self.interval_s)
            self.flush()

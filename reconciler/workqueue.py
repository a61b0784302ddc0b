"""A rate-limited work queue of object keys, shaped like client-go's workqueue.

Watch events for one ReplicaTarget arrive in bursts (its own update, the Deployment's,
the status write it causes); the queue folds them into one pending key. A key being
processed is never handed to a second worker: if it is added meanwhile, it is marked
dirty and re-queued when the first worker calls `done`. Failures come back after an
exponential, capped per-key delay; success (`forget`) resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import deque
from typing import Generic, TypeVar

from kube.backoff import Backoff

K = TypeVar("K")


class ShutDownError(Exception):
    """`get` on a queue that was shut down: the worker should exit."""


class WorkQueue(Generic[K]):
    """Deduplicating FIFO with delayed adds, per-key backoff and exclusive processing."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        # Per key, no jitter: a key's retries are not in lock-step with anything.
        self._backoff = backoff or Backoff(base=0.05, cap=30.0, jitter=False)
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # waiting in _queue, or to re-queue after done()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._delayed: list[tuple[float, int, K]] = []  # (due, tiebreak, key) heap
        # Earliest due time per delayed key: one pending delayed add per key, like client-go's
        # waitingForQueue, so a key that fails while events keep re-adding it cannot pile up
        # heap entries; later entries it superseded are skipped when they come due.
        self._due: dict[K, float] = {}
        self._tiebreak = itertools.count()
        # Set whenever something may be ready. Single-threaded asyncio: a worker checks the
        # queue and clears the event with no await in between, so no wake-up is lost.
        self._wakeup = asyncio.Event()
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: K) -> None:
        """Queue `key` unless it is already waiting; a key in flight is re-queued by done()."""
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wake()

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed (an earlier pending due time stands)."""
        if delay <= 0:
            self.add(key)
            return
        due = asyncio.get_running_loop().time() + delay
        if key in self._due and self._due[key] <= due:
            return  # already due earlier
        self._due[key] = due
        heapq.heappush(self._delayed, (due, next(self._tiebreak), key))
        self._wake()

    def add_rate_limited(self, key: K) -> None:
        """Queue `key` after its backoff delay, and count one more failure for it."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, self._backoff.delay(failures))

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts from the base delay again."""
        self._failures.pop(key, None)

    async def get(self) -> K:
        """Wait for the next key and mark it in flight. Raises ShutDownError."""
        while True:
            if self._shutdown:
                raise ShutDownError
            self._promote_due()
            if self._queue:
                key = self._queue.popleft()
                self._dirty.discard(key)
                self._processing.add(key)
                return key
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                # Not wait_for: on 3.11 it can swallow a cancellation of the worker.
                async with asyncio.timeout(self._next_due_in()):
                    await self._wakeup.wait()

    def done(self, key: K) -> None:
        """The worker finished `key`; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def shut_down(self) -> None:
        """Wake every waiting worker with ShutDownError; later adds are ignored."""
        self._shutdown = True
        self._wake()

    def _promote_due(self) -> None:
        now = asyncio.get_running_loop().time()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) != due:
                continue  # superseded by an earlier add_after of the same key
            del self._due[key]
            self.add(key)

    def _next_due_in(self) -> float | None:
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - asyncio.get_running_loop().time())

    def _wake(self) -> None:
        self._wakeup.set()

"""A rate-limited work queue of object keys, shaped like client-go's workqueue.

Requirement: one reconcile per burst of events (a target's update, its Deployment's, the status
write it causes), never two at once for one key: a key added while in flight is queued again on
`done`. Failures come back after an exponential, capped per-key delay; `forget` resets it.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from kube.backoff import Backoff

K = TypeVar("K")


class WorkQueue(Generic[K]):
    """Deduplicating FIFO with delayed adds, per-key backoff and exclusive processing."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self._backoff = backoff or Backoff(base=0.05, cap=30.0)
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._dirty: set[K] = set()  # waiting in _queue, or to queue again after done()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        # One pending delayed add per key (client-go's waitingForQueue): the earliest stands, so
        # a key that fails while events keep adding it cannot pile up timers.
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def add(self, key: K) -> None:
        """Queue `key` unless it is already waiting; a key in flight is queued again by done()."""
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed (an earlier pending due time stands)."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= loop.time() + delay:
                return
            timer.cancel()
        self._timers[key] = loop.call_later(delay, self._due, key)

    def add_rate_limited(self, key: K) -> None:
        """Queue `key` after its backoff delay, and count one more failure for it."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, self._backoff.delay(failures))

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts from the base delay again."""
        self._failures.pop(key, None)

    async def get(self) -> K:
        """Wait for the next key and mark it in flight."""
        key = await self._queue.get()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        """The worker finished `key`; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.put_nowait(key)

    def shut_down(self) -> None:
        """Drop the pending delayed adds: the queue ends with the term that owned it (its workers
        are cancelled with the controller's run)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _due(self, key: K) -> None:
        del self._timers[key]
        self.add(key)

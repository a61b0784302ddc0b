"""The control loop around reconcile(key): work queue, workers, resync.

Requirement: every ReplicaTarget is reconciled, once per burst of events, by the leader only.
A failure comes back with capped backoff; a TerminalError is logged, counted and left until an
event wakes the key; a resync re-enqueues every target. Cancelling `run` stops it all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final

from kube.backoff import Backoff
from reconciler.reconcile import TerminalError
from reconciler.workqueue import WorkQueue

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from reconciler.metrics import ReconcilerMetrics
    from reconciler.reconcile import Key, Result

log = logging.getLogger(__name__)

DEFAULT_WORKERS: Final = 4
RESYNC_SECONDS: Final = 60.0
SYNC_POLL_SECONDS: Final = 0.1


class Controller:
    """Runs `reconcile` for queued keys with a few workers while `run` is running."""

    def __init__(
        self,
        reconcile: Callable[[Key], Awaitable[Result]],
        *,
        keys: Callable[[], Iterable[Key]],
        synced: Callable[[], bool],
        metrics: ReconcilerMetrics,
        workers: int = DEFAULT_WORKERS,
        backoff: Backoff | None = None,
    ) -> None:
        self._reconcile = reconcile
        self._keys = keys
        self._synced = synced
        self._metrics = metrics
        self._workers = workers
        self._backoff = backoff or Backoff(base=0.1, cap=30.0)
        self._queue: WorkQueue[Key] | None = None

    def enqueue(self, key: Key) -> None:
        """Informer-subscriber side: a no-op unless this process is leading right now."""
        if self._queue is not None:
            self._queue.add(key)

    async def run(self) -> None:
        """Reconcile until cancelled: wait for the caches, queue every key, start workers."""
        while not self._synced():  # noqa: ASYNC110 - the informers expose no sync event
            await asyncio.sleep(SYNC_POLL_SECONDS)
        queue: WorkQueue[Key] = WorkQueue(self._backoff)
        self._queue = queue
        log.info("reconciler started", extra={"workers": self._workers})
        try:
            self._enqueue_all(queue)
            async with asyncio.TaskGroup() as group:
                for n in range(self._workers):
                    group.create_task(self._work(queue), name=f"reconcile-worker-{n}")
                group.create_task(self._resync(queue), name="reconcile-resync")
        finally:
            self._queue = None
            queue.shut_down()
            log.info("reconciler stopped")

    def _enqueue_all(self, queue: WorkQueue[Key]) -> None:
        for key in self._keys():
            queue.add(key)

    async def _resync(self, queue: WorkQueue[Key]) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            self._enqueue_all(queue)

    async def _work(self, queue: WorkQueue[Key]) -> None:
        while True:
            key = await queue.get()
            try:
                await self._process(queue, key)
            finally:
                queue.done(key)

    async def _process(self, queue: WorkQueue[Key], key: Key) -> None:
        started = time.perf_counter()
        try:
            result = await self._reconcile(key)
        except TerminalError as e:
            self._metrics.observe_reconcile("terminal", time.perf_counter() - started)
            log.warning(
                "reconcile failed; not retried until the object or its Deployment changes",
                extra={"key": "/".join(key), "error": f"{type(e).__name__}: {e}"},
            )
            queue.forget(key)
            return
        except Exception as e:  # noqa: BLE001 - any other failure is retried with backoff
            self._metrics.observe_reconcile("error", time.perf_counter() - started)
            log.info(
                "reconcile failed; retrying with backoff",
                extra={"key": "/".join(key), "error": f"{type(e).__name__}: {e}"},
            )
            queue.add_rate_limited(key)
            return
        done = result.requeue_after is None
        self._metrics.observe_reconcile("success" if done else "requeue_after",
                                        time.perf_counter() - started)  # fmt: skip
        queue.forget(key)
        if result.requeue_after is not None:
            queue.add_after(key, result.requeue_after)

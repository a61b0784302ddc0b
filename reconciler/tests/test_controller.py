"""Controller: failures retry with backoff, successes are not retried, enqueue needs a leader;
every reconcile is counted by result and the queue depth is visible while leading."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest
from prometheus_client import CollectorRegistry

from kube.backoff import Backoff
from reconciler.controller import Controller
from reconciler.metrics import RESULTS, ReconcilerMetrics
from reconciler.reconcile import Key, Result

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

KEY: Key = ("ns", "web")
WAIT_S = 5.0
# Retries far later than any test waits: each reconcile below runs exactly once.
NO_RETRY = Backoff(60.0, 60.0, jitter=False)


def metric(registry: CollectorRegistry, name: str, /, **labels: str) -> float | None:
    # What a scrape would read (the registry's collect()); tests cannot import tools/.
    return registry.get_sample_value(name, labels)


async def until(condition: Callable[[], bool]) -> None:
    """Bounded wait for `condition` (metrics are recorded after reconcile returns)."""
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the value
            await asyncio.sleep(0.01)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_failing_key_is_retried_until_it_succeeds_and_then_left_alone() -> None:
    calls: list[Key] = []
    done = asyncio.Event()

    async def reconcile(key: Key) -> Result:
        calls.append(key)
        if len(calls) < 3:
            raise RuntimeError("API said no")
        done.set()
        return Result()

    controller = Controller(
        reconcile,
        keys=lambda: [KEY],
        synced=lambda: True,
        metrics=ReconcilerMetrics(CollectorRegistry(), lease="test"),
        backoff=Backoff(0.01, 0.05, jitter=False),
    )
    task = asyncio.ensure_future(controller.run())
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.2)  # long enough for any stray retry at the 0.05 s cap

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert calls == [KEY, KEY, KEY]
    assert not controller.running


@pytest.mark.asyncio
async def test_enqueue_is_ignored_while_not_leading() -> None:
    async def reconcile(key: Key) -> Result:
        raise AssertionError("must not run")

    controller = Controller(
        reconcile,
        keys=list,
        synced=lambda: True,
        metrics=ReconcilerMetrics(CollectorRegistry(), lease="test"),
    )

    controller.enqueue(KEY)

    assert not controller.running


async def _raise(key: Key) -> Result:
    raise RuntimeError("API said no")


async def _return(result: Result) -> Result:
    return result


@pytest.mark.parametrize(
    ("reconcile", "result"),
    [
        (lambda key: _return(Result()), "success"),
        (lambda key: _return(Result(requeue_after=60.0)), "requeue_after"),
        (lambda key: _return(Result(requeue=True)), "requeue"),
        (_raise, "error"),
    ],
)
@pytest.mark.asyncio
async def test_each_reconcile_is_counted_by_result_and_timed(
    reconcile: Callable[[Key], Awaitable[Result]], result: str
) -> None:
    registry = CollectorRegistry()
    metrics = ReconcilerMetrics(registry, lease="test")
    controller = Controller(
        reconcile, keys=lambda: [KEY], synced=lambda: True, metrics=metrics, backoff=NO_RETRY
    )
    task = asyncio.ensure_future(controller.run())

    count = "replicant_reconcile_time_seconds_count"
    await until(lambda: metric(registry, count, controller="replicatarget") == 1)
    await stop(task)

    counted = {
        r: metric(registry, "replicant_reconcile_total", controller="replicatarget", result=r)
        for r in RESULTS
    }
    assert counted == {r: (1.0 if r == result else 0.0) for r in RESULTS}
    errors = metric(registry, "replicant_reconcile_errors_total", controller="replicatarget")
    assert errors == (1.0 if result == "error" else 0.0)


@pytest.mark.asyncio
async def test_queue_depth_shows_waiting_keys_while_leading_and_zero_after() -> None:
    registry = CollectorRegistry()
    busy = asyncio.Event()

    async def reconcile(key: Key) -> Result:
        busy.set()
        await asyncio.Event().wait()  # hold the only worker: the other keys wait in the queue
        return Result()

    keys: list[Key] = [("ns", "a"), ("ns", "b"), ("ns", "c")]
    controller = Controller(
        reconcile,
        keys=lambda: keys,
        synced=lambda: True,
        metrics=ReconcilerMetrics(registry, lease="test"),
        workers=1,
    )
    before = metric(registry, "replicant_workqueue_depth", name="replicatarget")
    task = asyncio.ensure_future(controller.run())
    await asyncio.wait_for(busy.wait(), WAIT_S)

    leading = metric(registry, "replicant_workqueue_depth", name="replicatarget")
    await stop(task)
    after = metric(registry, "replicant_workqueue_depth", name="replicatarget")

    assert (before, leading, after) == (0.0, 2.0, 0.0)

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
from reconciler.reconcile import Key, Result, TerminalError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

KEY: Key = ("ns", "web")
WAIT_S = 5.0
# Retries far later than any test waits: each reconcile below runs exactly once.
NO_RETRY = Backoff(60.0, 60.0)


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
        backoff=Backoff(0.01, 0.05),
    )
    task = asyncio.ensure_future(controller.run())
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.2)  # long enough for any stray retry at the 0.05 s cap

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert calls == [KEY, KEY, KEY]


@pytest.mark.asyncio
async def test_a_key_enqueued_while_not_leading_is_not_reconciled_once_leading() -> None:
    other: Key = ("ns", "other")
    calls: list[Key] = []
    reconciled = asyncio.Event()

    async def reconcile(key: Key) -> Result:
        calls.append(key)
        reconciled.set()
        return Result()

    controller = Controller(
        reconcile,
        keys=lambda: [other],
        synced=lambda: True,
        metrics=ReconcilerMetrics(CollectorRegistry(), lease="test"),
        workers=1,
    )
    controller.enqueue(KEY)  # a follower hears the event; the leader reconciles it
    task = asyncio.ensure_future(controller.run())
    await asyncio.wait_for(reconciled.wait(), WAIT_S)
    await stop(task)

    # One worker, FIFO: a KEY kept from before leading would have come first.
    assert calls == [other]


@pytest.mark.asyncio
async def test_a_terminal_failure_is_counted_and_not_retried_but_a_new_event_runs_it() -> None:
    registry = CollectorRegistry()
    calls: list[Key] = []

    async def reconcile(key: Key) -> Result:
        calls.append(key)
        raise TerminalError("a person has to act")

    controller = Controller(
        reconcile,
        keys=lambda: [KEY],
        synced=lambda: True,
        metrics=ReconcilerMetrics(registry, lease="test"),
        backoff=Backoff(0.001, 0.001),  # an error retry would come at once
    )
    task = asyncio.ensure_future(controller.run())
    terminal = {"controller": "replicatarget", "result": "terminal"}
    await until(lambda: metric(registry, "replicant_reconcile_total", **terminal) == 1)
    controller.enqueue(KEY)  # the object or its Deployment changed
    await until(lambda: metric(registry, "replicant_reconcile_total", **terminal) == 2)
    await stop(task)

    assert calls == [KEY, KEY]
    assert metric(registry, "replicant_reconcile_total", controller="replicatarget",
                  result="error") == 0  # fmt: skip


async def _raise(key: Key) -> Result:
    raise RuntimeError("API said no")


async def _raise_terminal(key: Key) -> Result:
    raise TerminalError("refused")


async def _return(result: Result) -> Result:
    return result


@pytest.mark.parametrize(
    ("reconcile", "result"),
    [
        (lambda key: _return(Result()), "success"),
        (lambda key: _return(Result(requeue_after=60.0)), "requeue_after"),
        (_raise, "error"),
        (_raise_terminal, "terminal"),
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

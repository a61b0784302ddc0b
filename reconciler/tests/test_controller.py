"""Controller: failures retry with backoff, successes are not retried, enqueue needs a leader."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kube.backoff import Backoff
from reconciler.controller import Controller
from reconciler.reconcile import Key, Result

KEY: Key = ("ns", "web")


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

    controller = Controller(reconcile, keys=list, synced=lambda: True)

    controller.enqueue(KEY)

    assert not controller.running

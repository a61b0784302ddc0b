"""WorkQueue: dedup, exclusive processing, delays and capped exponential backoff."""

from __future__ import annotations

import asyncio

import pytest

from kube.backoff import Backoff
from reconciler.workqueue import WorkQueue


@pytest.mark.asyncio
async def test_adding_a_waiting_key_twice_queues_it_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")

    queue.add("z")
    assert [await queue.get(), await queue.get(), await queue.get()] == ["a", "b", "z"]


@pytest.mark.asyncio
async def test_key_added_while_in_flight_is_not_handed_out_until_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    first = await queue.get()

    queue.add("a")
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0.05)
    assert not second.done()

    queue.done(first)
    assert await asyncio.wait_for(second, 1) == "a"
    queue.done("a")


@pytest.mark.asyncio
async def test_done_without_a_new_add_does_not_requeue() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.done(await queue.get())
    queue.add("z")

    assert await queue.get() == "z"  # no second "a" ahead of it


@pytest.mark.asyncio
async def test_add_after_hands_out_the_key_only_once_due() -> None:
    queue: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()

    queue.add_after("a", 0.1)
    key = await asyncio.wait_for(queue.get(), 2)

    assert key == "a"
    assert loop.time() - start >= 0.1


@pytest.mark.asyncio
async def test_shut_down_drops_pending_delayed_adds() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.01)

    queue.shut_down()
    await asyncio.sleep(0.05)

    queue.add("z")
    assert await asyncio.wait_for(queue.get(), 1) == "z"  # "a" never came


class AttemptLog(Backoff):
    """Records the failure count each delay is asked for, and waits 0 s."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[int] = []

    def delay(self, attempt: int) -> float:
        self.attempts.append(attempt)
        return 0.0


@pytest.mark.asyncio
async def test_rate_limited_adds_count_failures_and_forget_resets_them() -> None:
    backoff = AttemptLog()
    queue: WorkQueue[str] = WorkQueue(backoff)
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")

    queue.forget("a")
    queue.add_rate_limited("a")

    assert backoff.attempts == [0, 1, 0]
    assert await asyncio.wait_for(queue.get(), 1) == "a"


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 0.05), (1, 0.1), (3, 0.4), (20, 30.0), (10_000, 30.0)],
)
def test_backoff_doubles_per_failure_up_to_the_cap(failures: int, expected: float) -> None:
    assert Backoff(base=0.05, cap=30.0).delay(failures) == pytest.approx(expected)


@pytest.mark.asyncio
async def test_a_later_add_after_of_a_waiting_key_is_dropped_not_delivered_again() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.01)
    queue.add_after("a", 0.3)  # already due earlier: must not come back a second time
    queue.add_after("b", 0.6)

    first = await asyncio.wait_for(queue.get(), 5)
    queue.done(first)
    second = await asyncio.wait_for(queue.get(), 5)
    queue.done(second)

    assert (first, second) == ("a", "b")

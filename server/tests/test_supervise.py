"""Background loops are restarted after a crash, with backoff that forgets old crashes."""

from __future__ import annotations

import pytest

from kube.backoff import Backoff
from server.app import HEALTHY_RUN_S, _supervise


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def no_jitter() -> Backoff:
    return Backoff(base=1.0, cap=60.0, uniform=lambda _low, _high: 0.0)


async def run_crashing(runs: int, seconds_per_run: float, backoff: Backoff) -> None:
    clock = Clock()
    remaining = [runs]

    async def loop() -> None:
        clock.now += seconds_per_run
        remaining[0] -= 1
        if remaining[0] > 0:
            raise RuntimeError("bug")

    await _supervise("test", loop, backoff=backoff, clock=clock)


@pytest.mark.asyncio
async def test_supervise_backs_off_more_after_each_quick_crash() -> None:
    backoff = no_jitter()

    await run_crashing(runs=4, seconds_per_run=1.0, backoff=backoff)

    assert backoff.attempt == 3  # three crashes, none of them after a healthy run


@pytest.mark.asyncio
async def test_supervise_forgets_earlier_crashes_after_a_healthy_run() -> None:
    backoff = no_jitter()
    for _ in range(5):
        backoff.next_delay()  # as if it had crashed often long ago

    await run_crashing(runs=2, seconds_per_run=HEALTHY_RUN_S, backoff=backoff)

    assert backoff.attempt == 1  # reset by the healthy run, then one delay for this crash

"""Exponential backoff with full jitter: the one retry policy of the process.

Requirement: no crash and no hot loop when the API server fails. Each informer keeps one retrying
loop (`next_delay`/`reset`, jittered so replicas that lost the API server together do not reconnect
in lock-step); the work queue asks per key (`delay`), without jitter, as client-go's per-item
limiter.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class Backoff:
    """Delays base, 2*base, 4*base ... capped at `cap`; `next_delay` draws from [0, that]."""

    def __init__(
        self,
        base: float = 0.2,
        cap: float = 30.0,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._base = base
        self._cap = cap
        self._uniform = uniform
        self._attempt = 0

    def delay(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0-based), without jitter; keeps no state."""
        # min() before the power: it would overflow for something failing for hours.
        return min(self._cap, self._base * 2.0 ** min(attempt, 32))

    def next_delay(self) -> float:
        """The next delay of this loop, with full jitter."""
        delay = self._uniform(0.0, self.delay(self._attempt))
        self._attempt += 1
        return delay

    def reset(self) -> None:
        self._attempt = 0

"""Exponential backoff with full jitter: the one retry policy of the process.

Requirement: no crash and no hot loop when the API server fails. The informers and the task
supervisor keep one retrying loop each (`next_delay`/`reset`); the work queue asks per key
(`delay(attempt)`) without jitter, as client-go's per-item limiter. Jitter keeps replicas that
lost the API server together from reconnecting in lock-step.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class Backoff:
    """Delays base, 2*base, 4*base ... capped at `cap`; with jitter, drawn from [0, that]."""

    def __init__(
        self,
        base: float = 0.2,
        cap: float = 30.0,
        *,
        jitter: bool = True,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._base = base
        self._cap = cap
        self._jitter = jitter
        self._uniform = uniform
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def delay(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0-based); keeps no state."""
        # min() before the power: it would overflow for something failing for hours.
        ceiling = min(self._cap, self._base * 2.0 ** min(attempt, 32))
        return self._uniform(0.0, ceiling) if self._jitter else ceiling

    def next_delay(self) -> float:
        delay = self.delay(self._attempt)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        self._attempt = 0

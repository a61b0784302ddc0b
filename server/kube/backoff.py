"""Exponential backoff with full jitter, shared by the informers and the background-task supervisor.

Full jitter (a uniform draw between 0 and the exponential ceiling) keeps many replicas that lost the
API server at the same instant from reconnecting in lock-step when it comes back.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class Backoff:
    """Delays base, 2*base, 4*base ... capped at `cap`, each drawn uniformly from [0, ceiling]."""

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

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2 ** min(self._attempt, 30))
        self._attempt += 1
        return self._uniform(0.0, ceiling)

    def reset(self) -> None:
        self._attempt = 0

"""Drift fights: when another writer keeps setting spec.replicas, stop setting it back.

Requirement: replicant and another owner (GitOps, a chart's `replicas:`) must not write forever.
After MAX_CORRECTIONS within WINDOW per ReplicaTarget spec it holds off for HOLD, doubling with
every further correction up to MAX_HOLD; a new spec (generation) starts over. In memory: a new
leader corrects at most MAX_CORRECTIONS more times. TODO: keep it in status if that matters.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Final

Key = tuple[str, str]

MAX_CORRECTIONS: Final = 3
WINDOW: Final = datetime.timedelta(hours=1)
HOLD: Final = datetime.timedelta(minutes=5)
MAX_HOLD: Final = datetime.timedelta(hours=1)


@dataclass
class _History:
    generation: int
    corrections: list[datetime.datetime] = field(default_factory=list)


@dataclass
class DriftGuard:
    """Per-key correction history and the hold it implies (pure, clock passed in)."""

    _history: dict[Key, _History] = field(default_factory=dict)

    def held_for(
        self, key: Key, generation: int, now: datetime.datetime
    ) -> datetime.timedelta | None:
        """How much longer to leave drift of this spec alone; None: correct it."""
        corrections = self._recent(key, generation, now)
        beyond = len(corrections) - MAX_CORRECTIONS
        if beyond < 0:
            return None
        hold = min(MAX_HOLD, HOLD * 2 ** min(beyond, 16))
        remaining = corrections[-1] + hold - now
        return remaining if remaining > datetime.timedelta(0) else None

    def corrected(self, key: Key, generation: int, now: datetime.datetime) -> None:
        self._recent(key, generation, now).append(now)

    def forget(self, key: Key) -> None:
        """The ReplicaTarget is gone."""
        self._history.pop(key, None)

    def _recent(self, key: Key, generation: int, now: datetime.datetime) -> list[datetime.datetime]:
        history = self._history.get(key)
        if history is None or history.generation != generation:
            history = self._history[key] = _History(generation)
        history.corrections = [t for t in history.corrections if now - t < WINDOW]
        return history.corrections

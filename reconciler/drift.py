"""Drift fights: when another writer keeps setting spec.replicas, stop setting it back.

A GitOps tool, a chart with `replicas:` or a script may own a Deployment's count too. Each of
its writes is drift to replicant and each correction is drift to it, so without a limit both
write forever, one Event per round. The guard counts replicant's recent corrections per
ReplicaTarget spec: after `max_corrections` within `window` it holds off for `hold`, doubling
with every further correction in the window up to `max_hold`, so a fight costs a few writes
an hour. A new spec (generation) is new intent and starts the count again.

The history lives in memory, so a new leader starts afresh: it corrects at most
`max_corrections` more times before it holds too. TODO: keep it in status if that ever matters.
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

    max_corrections: int = MAX_CORRECTIONS
    window: datetime.timedelta = WINDOW
    hold: datetime.timedelta = HOLD
    max_hold: datetime.timedelta = MAX_HOLD
    _history: dict[Key, _History] = field(default_factory=dict)

    def held_for(
        self, key: Key, generation: int, now: datetime.datetime
    ) -> datetime.timedelta | None:
        """How much longer to leave drift of this spec alone; None: correct it."""
        corrections = self._recent(key, generation, now)
        beyond = len(corrections) - self.max_corrections
        if beyond < 0:
            return None
        hold = min(self.max_hold, self.hold * 2 ** min(beyond, 16))
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
        history.corrections = [t for t in history.corrections if now - t < self.window]
        return history.corrections

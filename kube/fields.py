"""Numbers and timestamps out of raw API JSON, with one lenient rule.

Requirement: one malformed object must not crash a cache. Kubernetes omits zero values and a
hand-edited object may hold anything; every converter reads them the same way.
"""

from __future__ import annotations

import datetime


def optional_int(raw: object) -> int | None:
    """The integer, or None when absent or not an integer (a JSON bool is not one)."""
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def int_or_zero(raw: object) -> int:
    """The integer, or 0: Kubernetes omits zero counts, and a malformed value reads as none."""
    value = optional_int(raw)
    return 0 if value is None else value


def parse_time(raw: object) -> datetime.datetime | None:
    """RFC 3339 from the API (UTC, "Z"), timezone-aware; None when absent or malformed."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)

"""The pure parts of `make bench`: /proc parsing, percentiles and medians, the markdown table.

Kept apart from tools/bench.py (processes, load, the cluster) so they can be unit-tested without
any of it (tools/tests/test_bench_stats.py).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

# /proc/<pid>/stat fields after "(comm)", 0-based: field 3 (state) is index 0, so utime (14) is 11.
_UTIME, _STIME = 11, 12


def cpu_ticks(stat_text: str) -> int:
    """utime + stime of a /proc/<pid>/stat line, in clock ticks (all threads of the process).

    The command name is in parentheses and may itself hold spaces and parentheses, so the fields
    are counted from the last ")".
    """
    fields = stat_text[stat_text.rindex(")") + 1 :].split()
    return int(fields[_UTIME]) + int(fields[_STIME])


def rss_bytes(status_text: str) -> int:
    """VmRSS of a /proc/<pid>/status text, in bytes."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmRSS unit {unit!r}")
            return int(value) * 1024
    raise ValueError("no VmRSS line (has the process exited?)")


def load_average(loadavg_text: str) -> float:
    """The 1-minute load average from /proc/loadavg."""
    return float(loadavg_text.split()[0])


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1): a value that occurred, never an interpolation."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within 0..1, not {q}")
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least 1
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no values")
    return statistics.median(values)


def times(value: float | None) -> str:
    """A ratio as "1.12x" (two decimals: targets such as 1.15x are read off it); "n/a" for None."""
    return "n/a" if value is None else f"{value:.2f}x"


def paired_ratio(replicant: Sequence[float], baseline: Sequence[float]) -> float | None:
    """The median of the pairs' replicant/baseline ratios (the i-th value of each side).

    A pair is measured back to back, so both share the machine's load of that moment; a ratio of
    medians would set a quiet moment's value against a busy one's. With unequal
    counts there are no pairs: the ratio of the medians. None when either side has no value or a
    baseline value is 0."""
    if not replicant or not baseline or not all(baseline):
        return None
    if len(replicant) != len(baseline):
        return median(replicant) / median(baseline)
    return median([mine / theirs for mine, theirs in zip(replicant, baseline, strict=True)])


@dataclass(frozen=True)
class Row:
    figure: str
    replicant: str
    baseline: str = "n/a"
    ratio: str = "n/a"
    load: str = ""


HEADER = Row("figure", "replicant", "baseline", "ratio", "load avg (1-min)")


def format_table(rows: Sequence[Row]) -> str:
    """A markdown table, columns padded so it also reads as plain text."""
    cells = [(r.figure, r.replicant, r.baseline, r.ratio, r.load) for r in (HEADER, *rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    rule = tuple("-" * w for w in widths)
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
        for row in (cells[0], rule, *cells[1:])
    ]
    return "\n".join(lines)

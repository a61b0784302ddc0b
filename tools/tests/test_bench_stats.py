"""The bench's pure parts: /proc parsing, percentiles, ratios, the table (no processes)."""

from __future__ import annotations

import pytest

from tools import bench_stats
from tools.bench_stats import Row

# A real /proc/<pid>/stat line, with a command name holding spaces and parentheses.
STAT = (
    "4242 (python (bench) x) S 1 4242 4242 0 -1 4194560 25000 0 12 0 "
    "1234 567 0 0 20 0 9 0 100 1000000 5000 18446744073709551615 0 0 0 0 0 0 0 16781312 "
    "16386 0 0 0 17 1 0 0 0 0 0"
)


def test_cpu_ticks_adds_utime_and_stime_after_the_command_name() -> None:
    assert bench_stats.cpu_ticks(STAT) == 1234 + 567


def test_cpu_ticks_rejects_a_truncated_line() -> None:
    with pytest.raises((IndexError, ValueError)):
        bench_stats.cpu_ticks("4242 (python) S 1 2")


def test_rss_bytes_reads_vmrss_in_kilobytes() -> None:
    status = "Name:\tpython\nVmPeak:\t  900 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n"
    assert bench_stats.rss_bytes(status) == 51200 * 1024


def test_rss_bytes_fails_without_vmrss() -> None:
    with pytest.raises(ValueError, match="VmRSS"):
        bench_stats.rss_bytes("Name:\tzombie\nState:\tZ (zombie)\n")


def test_load_average_is_the_first_field() -> None:
    assert bench_stats.load_average("2.31 1.80 1.02 3/512 9999\n") == 2.31


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.0, 1.0), (0.5, 50.0), (0.99, 99.0), (1.0, 100.0)],
)
def test_percentile_is_nearest_rank(q: float, expected: float) -> None:
    samples = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert bench_stats.percentile(samples, q) == expected


def test_percentile_of_one_sample_is_that_sample() -> None:
    assert bench_stats.percentile([7.0], 0.99) == 7.0


def test_percentile_rejects_no_samples_and_bad_quantiles() -> None:
    with pytest.raises(ValueError, match="no samples"):
        bench_stats.percentile([], 0.5)
    with pytest.raises(ValueError, match="within"):
        bench_stats.percentile([1.0], 99)


def test_median_of_rounds() -> None:
    assert bench_stats.median([3.0, 1.0, 2.0]) == 2.0
    assert bench_stats.median([1.0, 2.0, 3.0, 10.0]) == 2.5
    with pytest.raises(ValueError, match="no values"):
        bench_stats.median([])


@pytest.mark.parametrize(
    ("replicant", "baseline", "expected"),
    [
        # A busy round 3 for the baseline is one outlying pair; a ratio of medians says 0.40x.
        ([110.0, 330.0, 121.0], [100.0, 300.0, 300.0], "1.10x"),
        ([110.0, 330.0], [100.0, 300.0, 110.0], "2.00x"),  # unequal counts: the medians
        ([391.0], [349.0], "1.12x"),
        ([], [1.0], "n/a"),
        ([1.0], [0.0], "n/a"),
    ],
)
def test_paired_ratio_is_the_median_of_each_rounds_ratio(
    replicant: list[float], baseline: list[float], expected: str
) -> None:
    assert bench_stats.times(bench_stats.paired_ratio(replicant, baseline)) == expected


def test_format_table_is_markdown_with_padded_columns() -> None:
    table = bench_stats.format_table(
        [Row("GetReplicas p50, c=1", "1.20 ms", "0.40 ms", "3.0x", "1.9"), Row("watch", "5 ms")]
    )
    lines = table.splitlines()
    assert lines[0].startswith("| figure ")
    assert set(lines[1].replace("|", "").replace(" ", "")) == {"-"}
    assert lines[2].split("|")[1:-1] == [
        " GetReplicas p50, c=1 ",
        " 1.20 ms   ",
        " 0.40 ms  ",
        " 3.0x  ",
        " 1.9              ",
    ]
    assert "| n/a " in lines[3]  # defaults for a replicant-only figure
    assert len({len(line) for line in lines}) == 1

"""Read a Prometheus exposition back into values, for tests that scrape /metrics.

Why parse instead of matching lines: `3` and `3.0` are the same value, and label order and
number formatting are prometheus_client's business. Its own parser reads the text back.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value, for every sample in the exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(text: str, name: str, /, **labels: str) -> float | None:
    """One sample's value by its full name (`..._total`, `..._count`) and labels; None if absent."""
    return samples(text).get((name, frozenset(labels.items())))

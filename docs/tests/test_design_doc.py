"""The design doc is meant to be read: it stays short enough to read in one sitting."""

from __future__ import annotations

import re
from pathlib import Path

DESIGN = Path(__file__).resolve().parents[1] / "design.md"


def _prose_words(markdown: str) -> int:
    without_front_matter = re.sub(r"\A---\n.*?\n---\n", "", markdown, flags=re.DOTALL)
    without_code = re.sub(r"```.*?```", "", without_front_matter, flags=re.DOTALL)
    return len(without_code.split())


def test_design_doc_prose_is_between_800_and_1500_words() -> None:
    assert 800 <= _prose_words(DESIGN.read_text()) <= 1500


def test_design_doc_covers_every_required_topic() -> None:
    headings = set(re.findall(r"^#{2,3} (.+)$", DESIGN.read_text(), flags=re.MULTILINE))
    required = {
        "API",
        "Developer workflow",
        "Build and release",
        "Caching",
        "mTLS and authorization",
        "Reconciliation, conflicts and automation",
        "Trade-offs and TODOs",
    }
    assert required <= headings

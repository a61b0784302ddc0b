"""Where the pinned tools from `make tools` live (tools/install.sh links them here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.tests.bazel_model import REPO


def pinned_tool(name: str) -> Path:
    """The pinned binary, or a test failure that says how to get it."""
    path = Path(os.environ.get("REPLICANT_BIN", REPO / ".cache" / "bin")) / name
    if not (path.exists() and os.access(path, os.X_OK)):
        pytest.fail(f"{name} is missing at {path}: run `make tools` (or tools/install.sh {name})")
    return path

"""Where the repository and the pinned tools from `make tools` are (tests that read the tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Directories that hold no sources of the project (see .bazelignore).
IGNORED_DIRS = frozenset({".venv", ".cache", "gen", "dist", ".git"})


def repo_files(pattern: str) -> list[Path]:
    """Tracked and untracked-but-not-ignored files matching a git pathspec glob."""
    git = shutil.which("git")
    if git is None:
        raise RuntimeError("git is needed to list the repository's files")
    out = subprocess.run(
        [git, "ls-files", "--cached", "--others", "--exclude-standard", "--", pattern],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    paths = {REPO / line for line in out.splitlines() if line}
    return sorted(p for p in paths if p.is_file() and not IGNORED_DIRS & set(p.parts))


def pinned_tool(name: str) -> Path:
    """The pinned binary, or a test failure that says how to get it."""
    path = Path(os.environ.get("REPLICANT_BIN", REPO / ".cache" / "bin")) / name
    if not (path.exists() and os.access(path, os.X_OK)):
        pytest.fail(f"{name} is missing at {path}: run `make tools` (or tools/install.sh {name})")
    return path

"""Whether this run is CI, and the one way tests give up when a tool or cluster is missing.

Shared by every test folder (e2e, charts, tools), so it lives below them in tools/: locally a
missing tool skips with the command that fixes it; under CI=true it fails, because a CI run that
silently skipped its cluster or chart tests would be green while testing nothing.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from tools.cluster.paths import bin_dir


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip locally, fail loudly in CI (where a skip would hide missing coverage)."""
    if running_in_ci():
        pytest.fail(f"CI=true and the tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tools(*names: str) -> None:
    """Skip or fail (as above) unless `make tools` has built every named tool."""
    if missing := [name for name in names if not os.access(bin_dir() / name, os.X_OK)]:
        skip_or_fail(f"pinned tools missing: {', '.join(missing)} (run `make tools`)")

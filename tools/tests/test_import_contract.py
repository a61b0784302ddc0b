"""The import contract (.importlinter) holds for the tree, and breaks on an upward import.

The second test copies the Python packages into a scratch tree, adds one import that runs back
up (kube -> server), and expects lint-imports to refuse it: a contract that cannot fail would
prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "reconciler", "kube", "tools", "e2e", "charts")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} missing: run `make venv` (import-linter is in the lock)")
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO / 'gen'}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / ".importlinter")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_tree_keeps_the_import_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward", "broken"),
    [
        ("kube/fields.py", "import server.app", "kube is not allowed to import server"),
        ("server/servicer.py", "import reconciler.decide", "server is not allowed to import"),
        ("reconciler/drift.py", "import kubernetes", "reconciler is not allowed to import"),
        ("kube/fields.py", "import aiohttp", "kube is not allowed to import aiohttp"),
        ("reconciler/drift.py", "import server.app", "reconciler is not allowed to import"),
        ("server/servicer.py", "import tools.devcerts", "server is not allowed to import"),
        ("tools/bench.py", "import e2e.cluster_fixtures", "tools is not allowed to import"),
    ],
)
def test_an_upward_import_breaks_the_contract(
    tmp_path: Path, module: str, upward: str, broken: str
) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=ignore)
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{upward}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout

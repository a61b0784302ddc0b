"""Starlark and workflow files are lint-clean, checked by the pinned buildifier and actionlint.

Neither Bazel nor GitHub Actions runs on every machine, so these files would otherwise
only be checked after a push.
"""

from __future__ import annotations

import subprocess

from tools.tests.bazel_model import REPO, repo_files, starlark_files
from tools.tests.tool_paths import pinned_tool


def test_starlark_files_are_formatted_and_lint_clean() -> None:
    files = [str(p.relative_to(REPO)) for p in starlark_files()]
    assert "MODULE.bazel" in files
    result = subprocess.run(
        [str(pinned_tool("buildifier")), "-mode=check", "-lint=warn", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflows_pass_actionlint() -> None:
    workflows = [str(p.relative_to(REPO)) for p in repo_files(".github/workflows/*.yml")]
    assert workflows, "no workflows found under .github/workflows"
    result = subprocess.run(
        [str(pinned_tool("actionlint")), "-no-color", *workflows],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_by_full_commit_sha_with_a_version_comment() -> None:
    unpinned = []
    for workflow in repo_files(".github/workflows/*.yml"):
        for number, line in enumerate(workflow.read_text().splitlines(), start=1):
            stripped = line.strip().removeprefix("- ")
            if not stripped.startswith("uses:"):
                continue
            ref = stripped.removeprefix("uses:").strip()
            action, _, rest = ref.partition("@")
            sha, _, comment = rest.partition("#")
            if action.startswith("./"):
                continue
            if len(sha.strip()) != 40 or not comment.strip():
                unpinned.append(f"{workflow.name}:{number}: {ref}")
    assert not unpinned, "pin by 40-char SHA and a `# vX.Y.Z` comment:\n" + "\n".join(unpinned)

"""Every GitHub Action is pinned by commit SHA with a version comment (offline shape check).

Whether each SHA is its tag's commit needs GitHub: `python3 -m tools.action_pins` in CI's
lint job. buildifier and actionlint run in `make lint` (pinned tools from `make tools`).
"""

from __future__ import annotations

from tools.action_pins import workflow_pins
from tools.tests.tool_paths import repo_files


def test_every_action_is_pinned_by_full_commit_sha_with_a_version_comment() -> None:
    unpinned = [
        f"{workflow.name}: {line}"
        for workflow in repo_files(".github/workflows/*.yml")
        for line in workflow_pins(workflow.read_text())[1]
    ]
    assert not unpinned, "pin by 40-char SHA and a `# vX.Y.Z` comment:\n" + "\n".join(unpinned)

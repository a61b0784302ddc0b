"""Every GitHub Action is pinned by commit SHA.

buildifier and actionlint run in `make lint` (pinned tools from `make tools`), not here,
so no test depends on binaries outside the venv.
"""

from __future__ import annotations

from tools.tests.tool_paths import repo_files


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

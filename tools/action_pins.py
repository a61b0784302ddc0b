"""Every GitHub Action is pinned to the commit its version comment names.

In `uses: owner/repo@<sha> # v1.2.3` GitHub runs the SHA and a reader trusts the comment, so a
SHA that is not that tag's commit (a typo, a moved tag, a commit that does not exist) must fail
in `lint`, not at "Set up job" of a release. Each tag is resolved with `git ls-remote` (an
annotated tag by its peeled `^{}` commit). CI's lint job runs `python3 -m tools.action_pins`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(?:\s+#\s*(\S+))?")
PINNED = re.compile(r"(?P<repo>[\w.-]+/[\w.-]+)(?:/\S*)?@(?P<sha>[0-9a-f]{40})")
LS_REMOTE_TIMEOUT_S = 60


@dataclass(frozen=True)
class Pin:
    repo: str
    sha: str
    tag: str


def workflow_pins(text: str) -> tuple[list[Pin], list[str]]:
    """The pins of one workflow, and its `uses:` lines that are not pinned that way."""
    pins: list[Pin] = []
    unpinned: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        uses = USES.match(line)
        if uses is None or uses[1].startswith("./"):
            continue
        ref = PINNED.fullmatch(uses[1])
        if ref and uses[2]:
            pins.append(Pin(ref["repo"], ref["sha"], uses[2]))
        else:
            unpinned.append(f"line {number}: {line.strip()}")
    return pins, unpinned


def tag_commit(repo: str, tag: str) -> str | None:
    """The commit `tag` of github.com/<repo> points at, or None if there is no such tag."""
    ref = f"refs/tags/{tag}"
    git = shutil.which("git") or "git"
    listed = subprocess.run(
        [git, "ls-remote", f"https://github.com/{repo}", ref, f"{ref}^{{}}"],
        capture_output=True,
        text=True,
        timeout=LS_REMOTE_TIMEOUT_S,
        check=True,
    ).stdout
    refs = {name: sha for sha, _, name in (line.partition("\t") for line in listed.splitlines())}
    return refs.get(f"{ref}^{{}}") or refs.get(ref)


def check(paths: list[Path]) -> list[str]:
    """One line per pin that does not match its tag (or is not a SHA pin at all)."""
    problems: list[str] = []
    resolved: dict[tuple[str, str], str | None] = {}
    for path in paths:
        pins, unpinned = workflow_pins(path.read_text())
        problems += [f"{path.name}: {line}: not `owner/repo@<sha> # <tag>`" for line in unpinned]
        for pin in pins:
            key = (pin.repo, pin.tag)
            if key not in resolved:
                resolved[key] = tag_commit(pin.repo, pin.tag)
            if resolved[key] != pin.sha:
                found = f"tag is {resolved[key]}" if resolved[key] else "no such tag"
                problems.append(f"{path.name}: {pin.repo}@{pin.sha} # {pin.tag}: {found}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted((REPO / ".github" / "workflows").glob("*.yml"))
    try:
        problems = check(paths)
    except (OSError, subprocess.SubprocessError) as error:
        stderr = getattr(error, "stderr", "") or ""
        print(f"action_pins: git ls-remote failed: {error} {stderr.strip()}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"every action pin in {len(paths)} workflows matches its tag")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""tools/action_pins.py against local fixture repositories: a pin passes only when its SHA is
the commit its tag names (lightweight or annotated). git's `insteadOf` sends the tool's
https://github.com/<owner>/<repo> to folders in tmp_path, so nothing leaves the machine."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from tools import action_pins

if TYPE_CHECKING:
    from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    return subprocess.run(
        [shutil.which("git") or "git", *identity, *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """github.com/acme/act: v1.0.0 (lightweight) and v2.0.0 (annotated) on two commits."""
    repo = tmp_path / "github" / "acme" / "act"
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    for version in ("v1.0.0", "v2.0.0"):
        git(repo, "commit", "-q", "--allow-empty", "-m", version)
    git(repo, "tag", "v1.0.0", "HEAD~1")
    git(repo, "tag", "-a", "v2.0.0", "-m", "v2.0.0")
    for key, value in {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{tmp_path / 'github'}/.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://github.com/",
    }.items():
        monkeypatch.setenv(key, value)
    return repo


def workflow(tmp_path: Path, uses: str) -> Path:
    path = tmp_path / "ci.yml"
    path.write_text(f"jobs:\n  x:\n    steps:\n      - uses: {uses}\n      - uses: ./local\n")
    return path


def test_pins_matching_lightweight_and_annotated_tags_pass(remote: Path, tmp_path: Path) -> None:
    v1, v2 = git(remote, "rev-parse", "v1.0.0^{commit}"), git(remote, "rev-parse", "v2.0.0^{}")
    path = tmp_path / "ci.yml"
    path.write_text(f"- uses: acme/act@{v1} # v1.0.0\n- uses: acme/act/sub@{v2} # v2.0.0\n")

    assert action_pins.check([path]) == []
    assert action_pins.main([str(path)]) == 0


@pytest.mark.parametrize(
    ("pinned", "tag", "expected"),
    [
        ("HEAD~1", "v2.0.0", "tag is {v2}"),  # another commit of the same repository
        ("v2.0.0", "v2.0.0", "tag is {v2}"),  # the annotated tag object, not its commit
        ("HEAD", "v9.9.9", "no such tag"),
    ],
    ids=["other-commit", "tag-object", "missing-tag"],
)
def test_a_sha_that_is_not_the_tags_commit_fails(
    remote: Path, tmp_path: Path, pinned: str, tag: str, expected: str
) -> None:
    sha = git(remote, "rev-parse", pinned)
    path = workflow(tmp_path, f"acme/act@{sha} # {tag}")

    problems = action_pins.check([path])

    assert problems == [
        f"ci.yml: acme/act@{sha} # {tag}: " + expected.format(v2=git(remote, "rev-parse", "HEAD"))
    ]
    assert action_pins.main([str(path)]) == 1


@pytest.mark.parametrize("uses", ["acme/act@v1.0.0", "acme/act@" + "a" * 40, "acme/act@abc # v1"])
def test_a_pin_without_full_sha_and_tag_comment_fails_offline(tmp_path: Path, uses: str) -> None:
    assert action_pins.workflow_pins(f"- uses: {uses}\n") == ([], [f"line 1: - uses: {uses}"])


def test_an_unreachable_repository_fails_with_gits_message(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workflow(tmp_path, f"acme/missing@{'a' * 40} # v1.0.0")

    assert action_pins.main([str(path)]) == 1
    assert "git ls-remote failed" in capsys.readouterr().err

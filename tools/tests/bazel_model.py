"""A read-only model of the repository's BUILD files, parsed without Bazel.

Bazel cannot run on every developer machine, so the static tests read the BUILD files
themselves. Starlark BUILD files are Python-syntax, so `ast` parses them; only literal
arguments are evaluated (no glob(): explicit lists are what makes coverage checkable).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Rules (and macros) that own Python sources, and those of them that run tests.
PY_RULES = frozenset({"py_library", "py_binary", "py_test", "py_pytest"})
TEST_RULES = frozenset({"py_test", "py_pytest"})
# Directories that hold no Bazel packages (see .bazelignore).
IGNORED_DIRS = frozenset({".venv", ".cache", "gen", "dist", ".git"})


@dataclass(frozen=True)
class PyTarget:
    """One py_* call in a BUILD file, with the literal values of its attributes."""

    package: str
    rule: str
    name: str
    srcs: tuple[str, ...]
    deps: tuple[str, ...]
    non_literal: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"//{self.package}:{self.name}"


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


def build_files() -> list[Path]:
    return [p for p in repo_files("*BUILD.bazel") if p.name == "BUILD.bazel"]


def starlark_files() -> list[Path]:
    names = ("*.bazel", "*.bzl")
    return sorted({p for pattern in names for p in repo_files(pattern)})


def package_of(path: Path) -> str:
    """The Bazel package that owns a file: its nearest ancestor with a BUILD.bazel."""
    directory = path.parent
    while directory != REPO and not (directory / "BUILD.bazel").is_file():
        directory = directory.parent
    return directory.relative_to(REPO).as_posix() if directory != REPO else ""


def _literal_strings(node: ast.expr) -> tuple[list[str], bool]:
    """The strings of a list/str literal; the flag is False for anything computed."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return [], False
    if isinstance(value, str):
        return [value], True
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value), True
    return [], False


def parse_build_file(path: Path) -> list[PyTarget]:
    package = path.parent.relative_to(REPO).as_posix()
    package = "" if package == "." else package
    targets: list[PyTarget] = []
    for stmt in ast.parse(path.read_text(), filename=str(path)).body:
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            continue
        call = stmt.value
        if not (isinstance(call.func, ast.Name) and call.func.id in PY_RULES):
            continue
        attrs: dict[str, list[str]] = {}
        non_literal: list[str] = []
        for kw in call.keywords:
            if kw.arg in {"name", "srcs", "deps"}:
                values, ok = _literal_strings(kw.value)
                attrs[kw.arg] = values
                if not ok:
                    non_literal.append(kw.arg)
        targets.append(
            PyTarget(
                package=package,
                rule=call.func.id,
                name=(attrs.get("name") or ["?"])[0],
                srcs=tuple(attrs.get("srcs", [])),
                deps=tuple(attrs.get("deps", [])),
                non_literal=tuple(non_literal),
            )
        )
    return targets


def all_targets() -> list[PyTarget]:
    return [t for path in build_files() for t in parse_build_file(path)]


def resolve_label(label: str, package: str) -> str:
    """Canonical //pkg:name form of a label written inside `package`."""
    repo, sep, rest = label.partition("//")
    if (sep and repo.startswith("@")) or label.startswith("//"):
        pkg, _, name = rest.partition(":")
        return f"{repo}//{pkg}:{name or pkg.rsplit('/', 1)[-1]}"
    return f"//{package}:{label.lstrip(':')}"


def src_path(src: str, package: str) -> Path | None:
    """The source file a srcs entry names, or None for a generated (":rule") entry."""
    if src.startswith(":") or src.startswith("@"):
        return None
    if src.startswith("//"):
        pkg, _, name = src[2:].partition(":")
        return REPO / pkg / name
    return REPO / package / src


def macro_default_deps(bzl: Path, variable: str) -> tuple[str, ...]:
    """A top-level list-of-strings constant from a .bzl file (e.g. PYTEST_DEPS)."""
    for stmt in ast.parse(bzl.read_text()).body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == variable
        ):
            values, ok = _literal_strings(stmt.value)
            if ok:
                return tuple(values)
    raise LookupError(f"{variable} not found in {bzl}")

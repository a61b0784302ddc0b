"""`make doctor`: which tools are here, how to get the missing ones, which build path runs.

replicant builds two ways from the same lock file: with Bazel (hermetic; CI and anyone
who installs Bazelisk) or with the venv (every machine). This prints which one `make`
will use and why, so nobody has to guess why `make test` behaved as it did.
Standard library only: it must work before the venv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Tool:
    name: str
    purpose: str
    how_to_get: str
    pinned: bool = False  # built by `make tools` into .cache/bin


TOOLS = (
    Tool(
        "python3.11",
        "venv, tests, release scripts",
        "pyenv install 3.11, or apt install python3.11",
    ),
    Tool("go", "builds the pinned tools (make tools)", "https://go.dev/dl (>= 1.26)"),
    Tool("git", "versions, SOURCE_DATE_EPOCH, file lists", "your package manager"),
    Tool(
        "openssl",
        "dev PKI (make certs) and the local control plane's certificates",
        "your package manager",
    ),
    Tool(
        "bazel",
        "hermetic build, bazel test //..., the OCI image",
        "install Bazelisk (reads .bazelversion): brew install bazelisk, "
        "or github.com/bazelbuild/bazelisk/releases",
    ),
    Tool("docker", "kind clusters, loading the image", "Docker Engine or Docker Desktop"),
    Tool("helm", "chart lint, package, upgrade test", "make tools", pinned=True),
    Tool("kind", "e2e on kind (needs Docker)", "make tools", pinned=True),
    Tool("kubectl", "local control plane, e2e", "make tools", pinned=True),
    Tool("kubeconform", "chart schema checks (make helm-check, tests)", "make tools", pinned=True),
    Tool("buildifier", "Starlark lint (make lint, tests)", "make tools", pinned=True),
    Tool("actionlint", "workflow lint (tests)", "make tools", pinned=True),
    Tool("grpcurl", "manual gRPC calls", "make tools", pinned=True),
    Tool("ghz", "load generator (make bench)", "make tools", pinned=True),
)


def tools_bin() -> Path:
    return Path(os.environ.get("TOOLS_BIN", REPO / ".cache" / "bin"))


def locate(tool: Tool) -> str | None:
    if tool.pinned:
        candidate = tools_bin() / tool.name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(tool.name)
    if found is None and tool.name == "bazel":
        found = shutil.which("bazelisk")
    return found


def version_of(path: str) -> str:
    for flag in ("--version", "version"):
        try:
            result = subprocess.run(
                [path, flag], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0 and (result.stdout or result.stderr).strip():
            return (result.stdout or result.stderr).strip().splitlines()[0][:60]
    return "?"


def docker_daemon_up(docker: str) -> bool:
    try:
        return (
            subprocess.run(
                [docker, "info"], capture_output=True, timeout=10, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def build_path(found: dict[str, str | None]) -> tuple[str, str]:
    """The path `make build/test/image` takes, and the reason."""
    if found.get("bazel"):
        pinned = (REPO / ".bazelversion").read_text().strip()
        return "bazel", f"Bazel found; Bazelisk runs the pinned {pinned} from .bazelversion"
    return (
        "venv",
        "no bazel/bazelisk on PATH: make build/test use .venv (same lock), "
        "make image/release fail (make release-dry-run works)",
    )


def main() -> int:
    found = {tool.name: locate(tool) for tool in TOOLS}
    width = max(len(t.name) for t in TOOLS)
    print("Tools:")
    for tool in TOOLS:
        path = found[tool.name]
        if path:
            print(f"  ok      {tool.name:<{width}}  {version_of(path)}  ({path})")
        else:
            print(f"  missing {tool.name:<{width}}  for {tool.purpose}; get it: {tool.how_to_get}")
    venv = REPO / ".venv" / "bin" / "python"
    print(f"\nvenv: {'ready' if venv.exists() else 'not built (make venv)'} ({venv})")
    path, reason = build_path(found)
    print(f"Build path: {path} -- {reason}")
    docker = found.get("docker")
    if not docker or not docker_daemon_up(docker):
        print("No Docker engine: no kind, no image loading; the local control plane still works.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

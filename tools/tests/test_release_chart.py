"""The packaged chart: byte-reproducible, and its values name the released image.

Needs the pinned helm (`make tools`), so it runs in the venv (`make test`), not in the
hermetic `bazel test //...` (its Bazel target is manual).
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from typing import TYPE_CHECKING

import pytest
import yaml

from charts import helmtool
from tools import release
from tools.tests.tool_paths import pinned_tool

if TYPE_CHECKING:
    from pathlib import Path

REPOSITORY = "ghcr.io/acme/replicant"
DIGEST = "sha256:" + "cd" * 32

pytestmark = pytest.mark.tools  # the pinned helm: `make test`, not `make test-unit`


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _package(out: Path, epoch: int = 1_700_000_000) -> Path:
    out.mkdir()
    return release.package_chart(
        str(pinned_tool("helm")),
        "1.2.3",
        out,
        epoch,
        image_repository=REPOSITORY,
        image_digest=DIGEST,
    )


def test_chart_package_is_byte_identical_when_packaged_twice(tmp_path: Path) -> None:
    first = _package(tmp_path / "a")
    second = _package(tmp_path / "b")
    assert first.name == second.name == "replicant-1.2.3.tgz"
    assert _sha256(first) == _sha256(second)


def test_chart_package_has_fixed_mtime_owner_and_sorted_entries(tmp_path: Path) -> None:
    package = _package(tmp_path / "out", epoch=42)
    with tarfile.open(package) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(42, 0, 0, "", "")}
    assert package.read_bytes()[4:8] == b"\0\0\0\0", "gzip header must carry no timestamp"


def test_packaged_values_name_the_image_repository_and_index_digest(tmp_path: Path) -> None:
    package = _package(tmp_path / "out")
    with tarfile.open(package) as archive:
        member = archive.extractfile("replicant/values.yaml")
        assert member is not None
        values = yaml.safe_load(member.read())
    assert values["image"]["repository"] == REPOSITORY
    assert values["image"]["digest"] == DIGEST
    rendered = subprocess.run(
        [
            str(pinned_tool("helm")),
            "template",
            "r",
            str(package),
            "--kube-version",
            helmtool.kubernetes_version(),
            # Offline: the API server CIDRs the NetworkPolicy would otherwise look up.
            "--values",
            str(helmtool.OFFLINE_VALUES),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert f'image: "{REPOSITORY}@{DIGEST}"' in rendered


def test_dry_run_is_byte_reproducible_and_covers_chart_and_sbom(tmp_path: Path) -> None:
    sums = []
    for run in ("one", "two"):
        out = tmp_path / run
        argv = ["dry-run", "--version", "1.2.3", "--out", str(out), "--epoch", "42"]
        assert release.main([*argv, "--helm", str(pinned_tool("helm"))]) == 0
        sums.append((out / "SHA256SUMS").read_text())
    assert sums[0] == sums[1]
    names = [line.split("  ", 1)[1] for line in sums[0].splitlines()]
    assert names == ["RELEASE_NOTES.md", "replicant-1.2.3.tgz", "sbom.cdx.json"]

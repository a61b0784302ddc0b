"""Release artifacts are reproducible and describe the locked dependencies correctly."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import TYPE_CHECKING

from tools import release, sbom
from tools.tests.bazel_model import REPO
from tools.tests.tool_paths import pinned_tool

if TYPE_CHECKING:
    from pathlib import Path

LOCK = (REPO / "requirements_lock.txt").read_text()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_chart_package_is_byte_identical_when_packaged_twice(tmp_path: Path) -> None:
    helm = str(pinned_tool("helm"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = release.package_chart(helm, "1.2.3", tmp_path / "a", epoch=1_700_000_000)
    second = release.package_chart(helm, "1.2.3", tmp_path / "b", epoch=1_700_000_000)
    assert first.name == second.name == "replicant-1.2.3.tgz"
    assert _sha256(first) == _sha256(second)


def test_chart_package_has_fixed_mtime_owner_and_sorted_entries(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    package = release.package_chart(str(pinned_tool("helm")), "1.2.3", tmp_path / "out", epoch=42)
    with tarfile.open(package) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(42, 0, 0, "", "")}
    assert package.read_bytes()[4:8] == b"\0\0\0\0", "gzip header must carry no timestamp"


def test_repack_ignores_source_mtimes_and_order(tmp_path: Path) -> None:
    def make(path: Path, order: list[str], mtime: int) -> None:
        with tarfile.open(path, "w:gz") as archive:
            for name in order:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.uid = 1, mtime, 1000
                archive.addfile(info, io.BytesIO(b"x"))

    make(tmp_path / "one.tgz", ["c/b", "c/a"], 1)
    make(tmp_path / "two.tgz", ["c/a", "c/b"], 999)
    release.repack_reproducibly(tmp_path / "one.tgz", tmp_path / "one.out", epoch=7)
    release.repack_reproducibly(tmp_path / "two.tgz", tmp_path / "two.out", epoch=7)
    assert _sha256(tmp_path / "one.out") == _sha256(tmp_path / "two.out")


def test_checksums_cover_every_artifact_in_sha256sum_format(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    lines = release.write_checksums(tmp_path).read_text().splitlines()
    assert lines == [
        f"{hashlib.sha256(b'a').hexdigest()}  a.txt",
        f"{hashlib.sha256(b'b').hexdigest()}  b.txt",
    ]


def test_sbom_marks_runtime_closure_required_and_dev_tools_excluded() -> None:
    document = sbom.build_sbom(LOCK, "1.2.3")
    scopes = {str(c["name"]): c["scope"] for c in document["components"]}  # type: ignore[attr-defined]
    for runtime in ("grpcio", "protobuf", "kubernetes", "aiohttp", "urllib3"):
        assert scopes[runtime] == "required", runtime
    for dev in ("grpcio-tools", "mypy", "pytest", "ruff", "pip-tools"):
        assert scopes[dev] == "excluded", dev


def test_sbom_is_valid_cyclonedx_shape_and_deterministic() -> None:
    first = sbom.build_sbom(LOCK, "1.2.3", epoch=0)
    assert json.dumps(first, sort_keys=True) == json.dumps(
        sbom.build_sbom(LOCK, "1.2.3", epoch=0), sort_keys=True
    )
    assert first["bomFormat"] == "CycloneDX"
    assert first["specVersion"] == "1.5"
    components = first["components"]
    assert isinstance(components, list)
    assert all(c["purl"].startswith("pkg:pypi/") and c["hashes"] for c in components)
    assert len(components) == LOCK.count("==")


def test_stub_generator_matches_the_grpc_runtime_minor_version() -> None:
    locked = {p.name: p.version for p in sbom.parse_lock(LOCK).values()}
    tools_minor = locked["grpcio-tools"].split(".")[:2]
    assert locked["grpcio"].split(".")[:2] == tools_minor, "grpcio-tools must match grpcio"
    assert tuple(map(int, locked["grpcio"].split("."))) >= tuple(
        map(int, locked["grpcio-tools"].split("."))
    ), "generated stubs require grpcio >= the grpcio-tools that generated them"

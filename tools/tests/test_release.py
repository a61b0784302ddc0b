"""Release artifacts are reproducible, fail closed and describe the locked dependencies.

Hermetic (no helm, no Bazel): test_release_chart.py packages the chart with the pinned helm.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tools import release, sbom

# Not resolved: under `bazel test` the files are this target's data in its runfiles.
ROOT = Path(__file__).absolute().parents[2]
LOCK = (ROOT / "requirements_lock.txt").read_text()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


DIGEST = "sha256:" + "ab" * 32


def test_pin_image_values_sets_repository_and_digest_and_keeps_comments() -> None:
    values = (ROOT / "charts" / "replicant" / "values.yaml").read_text()
    pinned = release.pin_image_values(values, "ghcr.io/acme/replicant", DIGEST)
    assert '  repository: "ghcr.io/acme/replicant"\n' in pinned
    assert f'  digest: "{DIGEST}"\n' in pinned
    assert len(pinned.splitlines()) == len(values.splitlines()), "only two lines change"
    assert [a for a, b in zip(values.splitlines(), pinned.splitlines(), strict=True) if a != b] == [
        "  repository: replicant",
        '  digest: ""',
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("nameOverride: x\n", "no top-level `image:`"),
        ("image:\n  repository: a\n", "no image.digest"),
        ("image:\n  repository: a\n  digest: b\n  digest: c\n", "image.digest twice"),
        ("image:\n  tag: a\nother:\n  repository: a\n  digest: b\n", "no image.digest"),
    ],
)
def test_pin_image_values_refuses_values_it_cannot_pin_exactly(values: str, message: str) -> None:
    with pytest.raises(release.ReleaseError, match=message):
        release.pin_image_values(values, "r", DIGEST)


def test_release_without_bazel_fails_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    code = release.main(["all", "--version", "1.2.3", "--out", str(out), "--helm", "helm"])
    assert code == 1
    assert not out.exists()
    error = capsys.readouterr().err
    assert "Bazel is not installed" in error
    assert "make release-dry-run" in error


def test_dry_run_notes_say_it_is_not_a_release(tmp_path: Path) -> None:
    dry = release.write_notes("1.2.3", tmp_path, None).read_text()
    assert dry.startswith("# replicant 1.2.3 (dry run)")
    assert "do not publish" in dry
    real = release.write_notes("1.2.3", tmp_path, f"ghcr.io/acme/replicant@{DIGEST}").read_text()
    assert f"`ghcr.io/acme/replicant@{DIGEST}`" in real


def _fake_image(bazel: str, flags: list[str], version: str, out_dir: Path) -> str:
    (out_dir / f"replicant-{version}-oci.tar").write_text(" ".join(flags))
    (out_dir / "image-index.digest").write_text(DIGEST + "\n")
    return DIGEST


def _fake_chart(helm: str, version: str, out_dir: Path, epoch: int, **_: object) -> Path:
    chart = out_dir / f"replicant-{version}.tgz"
    chart.write_text("chart")
    return chart


def _release(out: Path, *flags: str) -> int:
    return release.main(
        ["all", "--version", "1.2.3", "--out", str(out), "--helm", "helm", "--bazel", "bazel",
         "--epoch", "0", *flags]
    )  # fmt: skip


def test_a_failed_image_build_leaves_the_earlier_release_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = tmp_path / "dist" / "1.2.3"
    earlier.mkdir(parents=True)
    (earlier / "replicant-1.2.3.tgz").write_text("the earlier chart")
    release.write_checksums(earlier)
    before = {p.name: p.read_text() for p in earlier.iterdir()}

    def failing_build(*_: object) -> str:
        raise subprocess.CalledProcessError(1, ["bazel", "build"])

    monkeypatch.setattr(release, "build_image", failing_build)

    assert _release(earlier) == 1
    assert {p.name: p.read_text() for p in earlier.iterdir()} == before
    assert [p.name for p in (tmp_path / "dist").iterdir()] == ["1.2.3"], "no staging left"


def test_a_complete_release_replaces_the_earlier_one_with_the_given_bazel_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dist" / "1.2.3"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier release")
    monkeypatch.setattr(release, "build_image", _fake_image)
    monkeypatch.setattr(release, "package_chart", _fake_chart)

    assert _release(out, "--bazel-flags=--config=release --config=locked") == 0
    names = ["RELEASE_NOTES.md", "image-index.digest", "replicant-1.2.3-oci.tar",
             "replicant-1.2.3.tgz", "sbom.cdx.json"]  # fmt: skip
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert sums == [f"{_sha256(out / name)}  {name}" for name in names]
    assert not (out / "stale.txt").exists()
    assert (out / "replicant-1.2.3-oci.tar").read_text() == "--config=release --config=locked"
    assert [p.name for p in (tmp_path / "dist").iterdir()] == ["1.2.3"]

"""The real node's e2e image keeps the release image's layout, so the chart sees the same.

The release image is Bazel's `//server:image` (server/BUILD.bazel); the e2e image is
tools/cluster/images.py, built without Bazel or a registry. These tests read the
oci_image and py_binary calls out of server/BUILD.bazel (Starlark parses as Python)
and fail when entrypoint, user, working directory, env or ports drift apart.
"""

from __future__ import annotations

import ast
import io
import json
import tarfile
from typing import TYPE_CHECKING, Any

import pytest

from tools.cluster import images, oci
from tools.tests.bazel_model import REPO

if TYPE_CHECKING:
    from pathlib import Path


def bazel_call(build_file: Path, rule: str, name: str) -> dict[str, Any]:
    """Keyword arguments (literals only) of `rule(name = name, ...)` in a BUILD file."""
    for node in ast.walk(ast.parse(build_file.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == rule:
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            if ast.literal_eval(kwargs["name"]) == name:
                return {
                    key: ast.literal_eval(value)
                    for key, value in kwargs.items()
                    if isinstance(value, ast.Constant | ast.List | ast.Dict)
                }
    raise AssertionError(f"no {rule}(name = {name!r}) in {build_file}")


RELEASE_IMAGE = bazel_call(REPO / "server" / "BUILD.bazel", "oci_image", "image")
RELEASE_BINARY = bazel_call(REPO / "server" / "BUILD.bazel", "py_binary", "server")


def test_entrypoint_user_and_workdir_match_the_release_image() -> None:
    config = images.release_config()

    assert list(config.entrypoint) == RELEASE_IMAGE["entrypoint"]
    assert config.user == RELEASE_IMAGE["user"]
    assert config.workdir == RELEASE_IMAGE["workdir"]
    assert sorted(config.exposed_ports) == sorted(RELEASE_IMAGE["exposed_ports"])


def test_env_is_the_release_images_env_plus_the_debian_bases_path() -> None:
    env = dict(item.split("=", 1) for item in images.release_config().env)

    assert {k: env[k] for k in RELEASE_IMAGE["env"]} == RELEASE_IMAGE["env"]
    assert set(env) - set(RELEASE_IMAGE["env"]) == {"PATH"}


def test_launcher_runs_the_same_module_as_the_bazel_binary() -> None:
    assert RELEASE_BINARY["main_module"] == "server"
    assert 'run_module("server", run_name="__main__"' in images.LAUNCHER
    # The image's app root is the release image's working directory.
    assert images.ENTRYPOINT[0].startswith(RELEASE_IMAGE["workdir"] + "/")


def test_runtime_requirements_are_the_locked_closure_of_requirements_in() -> None:
    lock = (REPO / "requirements_lock.txt").read_text()

    subset = images.runtime_requirements(lock, ["grpcio", "kubernetes", "protobuf"])

    pinned = {line.split("==")[0] for line in subset.splitlines() if "==" in line}
    assert {"grpcio", "kubernetes", "protobuf", "urllib3"} <= pinned
    assert not pinned & {"pytest", "mypy", "ruff", "grpcio-tools"}
    assert "--hash=sha256:" in subset


def test_runtime_requirements_refuse_a_package_the_lock_does_not_pin() -> None:
    with pytest.raises(images.ImageError, match="no pin"):
        images.runtime_requirements("grpcio==1.0 \\\n    --hash=sha256:00\n", ["nonesuch"])


def _archive_config(archive: Path) -> tuple[dict[str, Any], list[str]]:
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> bytes:
            member = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            return member.read()

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        names: list[str] = []
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as inner:
                names += inner.getnames()
        return config, names


def test_an_archive_is_byte_identical_when_written_twice(tmp_path: Path) -> None:
    layer = oci.Layer().add([oci.directory("app"), oci.file("app/x", b"1", 0o755)])
    config = images.release_config()

    first = oci.write_archive(tmp_path / "a.tar", "localhost/t:{digest}", [layer], config)
    second = oci.write_archive(tmp_path / "b.tar", "localhost/t:{digest}", [layer], config)

    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    image_config, names = _archive_config(tmp_path / "a.tar")
    assert image_config["config"]["Entrypoint"] == RELEASE_IMAGE["entrypoint"]
    assert image_config["config"]["User"] == RELEASE_IMAGE["user"]
    assert names == ["app", "app/x"]


def test_the_e2e_base_comes_from_the_release_bases_debian_release() -> None:
    release_base = (REPO / "tools" / "containers.MODULE.bazel").read_text()

    assert "bookworm" in release_base  # Debian 12, whichever bookworm image it pins
    assert " bookworm main\n" in images.DEBIAN_SOURCES


def test_the_e2e_image_carries_every_package_the_server_imports() -> None:
    """A package left out of the image only shows when a pod crashes on import on a real node."""
    first_party = {"server", "reconciler", "kube", "tools", "e2e", "charts", "replicant"}
    imported: set[str] = set()
    for package in ("server", "reconciler", "kube"):
        for path in (REPO / package).rglob("*.py"):
            if "tests" in path.relative_to(REPO).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module.partition(".")[0])
                elif isinstance(node, ast.Import):
                    imported.update(alias.name.partition(".")[0] for alias in node.names)
    shipped = {"replicant" if p == "proto" else p for p in images.APP_PACKAGES}
    assert imported & first_party <= shipped

"""The image's merged layers: every link resolves, one CPython, the layout issue 15 relies on.

The checks run on small synthetic layers everywhere, and on the real image under
`bazel test //server/tests:image` (IMAGE_LAYOUT names the oci_image directory).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from server.tests.image_layers import Entry, dangling_links, interpreters, merge_layers, read_layout


def _layer(*entries: tuple[str, str, str]) -> bytes:
    """A tar layer from (path, kind, link target) triples."""
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        for path, kind, target in entries:
            info = tarfile.TarInfo(path)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, target
            else:
                info.size = 1
            archive.addfile(info, io.BytesIO(b"x") if kind == "file" else None)
    return payload.getvalue()


BASE = _layer(("usr/bin", "dir", ""), ("usr/bin/bash", "file", ""), ("bin", "link", "usr/bin"))
RUNTIME = "app/s.runfiles/python_3_11/bin"
APP = _layer(
    (RUNTIME, "dir", ""),
    (f"{RUNTIME}/python3.11", "file", ""),
    (f"{RUNTIME}/python3", "link", "python3.11"),
    ("app/s.runfiles/_main/s/_s.venv/bin/python3", "link", "../../../../python_3_11/bin/python3"),
)


def test_links_across_layers_resolve() -> None:
    tree = merge_layers([BASE, APP])
    assert dangling_links(tree) == []
    assert tree["bin"] == Entry("link", 0o644, "usr/bin")


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("app/venv_python", "../nowhere/python3"),
        ("app/absolute", "/usr/lib/missing.so"),
        ("app/loop", "loop"),
        ("app/through_file", "/usr/bin/bash/inner"),
    ],
)
def test_a_dangling_link_is_reported(link: str, target: str) -> None:
    tree = merge_layers([BASE, APP, _layer((link, "link", target))])
    assert dangling_links(tree) == [f"{link} -> {target}"]


def test_one_interpreter_counts_links_and_copies_once() -> None:
    copy = _layer((f"{RUNTIME}/python3", "file", ""))
    assert interpreters(merge_layers([BASE, APP])) == ["app/s.runfiles/python_3_11"]
    assert interpreters(merge_layers([BASE, APP, copy])) == ["app/s.runfiles/python_3_11"]


def test_a_base_image_python_is_a_second_interpreter() -> None:
    python_base = _layer(("usr/local/bin/python3.11", "file", ""))
    assert len(interpreters(merge_layers([python_base, APP]))) == 2


def test_whiteout_removes_a_lower_layer_file() -> None:
    tree = merge_layers([BASE, _layer(("usr/bin/.wh.bash", "file", ""))])
    assert "usr/bin/bash" not in tree


def _real_image() -> Path:
    layout = os.environ.get("IMAGE_LAYOUT")
    if not layout:
        pytest.skip("the built image is checked by `bazel test //server/tests:image`")
    return Path(layout)


def test_only_links_below_the_given_directory_are_checked() -> None:
    base_man_link = _layer(("etc/alternatives/awk.1.gz", "link", "/usr/share/man/man1/mawk.1.gz"))
    tree = merge_layers([BASE, base_man_link, APP])
    assert dangling_links(tree, under="app") == []
    assert dangling_links(tree) == ["etc/alternatives/awk.1.gz -> /usr/share/man/man1/mawk.1.gz"]


def test_real_image_has_no_dangling_link_and_one_interpreter() -> None:
    image = read_layout(_real_image())
    # Our layers live under /app; the base's own links (Debian slim drops the man pages
    # its alternatives point to) are the base's business, but ours may point into it.
    assert dangling_links(image.tree, under="app") == []
    found = interpreters(image.tree)
    assert len(found) == 1, found
    assert "/server.runfiles/" in found[0], "the interpreter is the hermetic one in runfiles"


def test_real_image_runs_the_launcher_as_65532_from_app() -> None:
    image = read_layout(_real_image())
    config = image.config["config"]
    assert isinstance(config, dict)
    assert config["Entrypoint"] == ["/app/server/server"]
    assert config["User"] == "65532:65532"
    assert config["WorkingDir"] == "/app"
    launcher = image.tree["app/server/server"]
    assert launcher.kind == "file"
    assert launcher.mode & 0o111

"""Reads an OCI image layout (as rules_oci writes it) into the file tree its layers make.

Why it exists: the image's layers come from several rules (base pull, interpreter,
wheels, app) and a link that points into another layer, or nowhere, only fails when
the container starts. Reading the merged tree lets a test check every link and count
the interpreters before anything runs.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import re
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

# A CPython executable (python3, python3.11), not python3-config or a script.
INTERPRETER = re.compile(r"^python3(\.\d+)?$")
MAX_HOPS = 40


@dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir" or "link"
    mode: int
    target: str = ""


def merge_layers(layers: Iterable[bytes]) -> dict[str, Entry]:
    """Applies tar layers in order (OCI whiteouts included) into {path: Entry}."""
    tree: dict[str, Entry] = {"": Entry("dir", 0o755)}
    for blob in layers:
        data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                path = posixpath.normpath(member.name.lstrip("./") or ".").lstrip("/")
                path = "" if path == "." else path
                parent, base = posixpath.split(path)
                if base == ".wh..wh..opq":
                    tree = {p: e for p, e in tree.items() if not p.startswith(parent + "/")}
                    continue
                if base.startswith(".wh."):
                    gone = posixpath.join(parent, base[4:])
                    tree = {p: e for p, e in tree.items() if not _under(p, gone)}
                    continue
                _add_parents(tree, parent)
                if member.issym():
                    tree[path] = Entry("link", member.mode, member.linkname)
                elif member.islnk():
                    tree[path] = Entry("file", member.mode)
                elif member.isdir():
                    tree[path] = Entry("dir", member.mode)
                else:
                    tree[path] = Entry("file", member.mode)
    return tree


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _add_parents(tree: dict[str, Entry], directory: str) -> None:
    """Layers may omit parent directories; they exist implicitly."""
    while directory and directory not in tree:
        tree[directory] = Entry("dir", 0o755)
        directory = posixpath.dirname(directory)


def resolve(tree: dict[str, Entry], path: str) -> str | None:
    """The final path a path leads to through links (in any component), or None if dangling."""
    parts = [p for p in path.split("/") if p]
    current = ""
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, part) if current else part
        entry = tree.get(candidate)
        if entry is None:
            return None
        if entry.kind == "link":
            hops += 1
            if hops > MAX_HOPS:
                return None
            base = "" if entry.target.startswith("/") else current
            parts = [p for p in posixpath.join(base, entry.target).split("/") if p] + parts
            current = ""
            continue
        current = candidate
    return current


def dangling_links(tree: dict[str, Entry], under: str = "") -> list[str]:
    """Links below `under` that lead nowhere, resolved against the whole merged tree."""
    return sorted(
        f"{path} -> {entry.target}"
        for path, entry in tree.items()
        if entry.kind == "link" and _under(path, under or path) and resolve(tree, path) is None
    )


def interpreters(tree: dict[str, Entry]) -> list[str]:
    """CPython installations: prefixes whose bin/ holds a python3[.N] regular file.

    Links to the executable are not counted, and neither is a second copy in the same
    bin/ (a layer may store bin/python3 as a file rather than a link to python3.11).
    """
    return sorted(
        {
            posixpath.dirname(posixpath.dirname(path))
            for path, entry in tree.items()
            if entry.kind == "file"
            and INTERPRETER.match(posixpath.basename(path))
            and posixpath.basename(posixpath.dirname(path)) == "bin"
        }
    )


@dataclass(frozen=True)
class Image:
    config: dict[str, object]
    tree: dict[str, Entry]


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, _, value = digest.partition(":")
    return (layout / "blobs" / algorithm / value).read_bytes()


def read_layout(layout: Path) -> Image:
    """The single image of an OCI layout directory (index.json -> manifest -> layers)."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    if "manifests" in manifest:  # an image index: take its first image
        manifest = json.loads(_blob(layout, manifest["manifests"][0]["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    layers = [_blob(layout, layer["digest"]) for layer in manifest["layers"]]
    return Image(config=config, tree=merge_layers(layers))

"""Reproducible OCI image archives, written without a registry, a daemon or Bazel.

The real node's container runtime imports images from an OCI layout tarball
(`ctr images import`); this module writes one: each layer is an uncompressed tar whose
entries are sorted and carry a fixed owner and mtime, so the same inputs always give
the same digests. What goes into the layers is decided by tools.cluster.images.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

# 2000-01-01T00:00:00Z, the constant tools/bazel/py_image_layers.bzl stamps on layers.
LAYER_MTIME = 946684800
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class Member:
    """One tar entry: a TarInfo (type, mode, link target) and the bytes of a file."""

    info: tarfile.TarInfo
    data: bytes = b""


def directory(path: str, mode: int = 0o755, uid: int = 0) -> Member:
    info = tarfile.TarInfo(path.strip("/"))
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
    return Member(info)


def file(path: str, data: bytes, mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(path.strip("/"))
    info.mode, info.size = mode, len(data)
    return Member(info, data)


def symlink(path: str, target: str) -> Member:
    info = tarfile.TarInfo(path.strip("/"))
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
    return Member(info)


def tree(source: Path, dest: str, skip: tuple[str, ...] = ("__pycache__",)) -> list[Member]:
    """Every file and folder below `source`, placed under `dest` in the image."""
    members = [directory(dest)]
    for path in sorted(source.rglob("*")):
        if any(part in skip for part in path.relative_to(source).parts):
            continue
        target = f"{dest.strip('/')}/{path.relative_to(source).as_posix()}"
        if path.is_symlink():
            members.append(symlink(target, str(path.readlink())))
        elif path.is_dir():
            members.append(directory(target))
        elif path.is_file():
            executable = path.stat().st_mode & 0o111
            members.append(file(target, path.read_bytes(), 0o755 if executable else 0o644))
    return members


@dataclass
class Layer:
    """Members by path; a later member for the same path replaces the earlier one."""

    members: dict[str, Member] = field(default_factory=dict)

    def add(self, members: Iterable[Member]) -> Layer:
        for member in members:
            self.members[member.info.name] = member
        return self

    def write(self, out: io.BufferedIOBase) -> None:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.members):
                member = self.members[name]
                info = member.info
                info.mtime = LAYER_MTIME
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(member.data) if info.isreg() else None)


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an OCI image config that replicant's images set."""

    entrypoint: tuple[str, ...]
    user: str
    workdir: str
    env: tuple[str, ...]
    exposed_ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Entrypoint": list(self.entrypoint),
            "User": self.user,
            "WorkingDir": self.workdir,
            "Env": list(self.env),
        }
        if self.exposed_ports:
            config["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.labels:
            config["Labels"] = dict(self.labels)
        return config


class _Blobs:
    """The blobs/sha256 folder of an OCI layout being written."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.dir / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def put_layer(self, layer: Layer) -> tuple[dict[str, Any], str]:
        """Writes the layer; returns its descriptor and diff ID (same: uncompressed)."""
        with tempfile.NamedTemporaryFile(dir=self.dir, delete=False) as tmp:
            layer.write(tmp)  # type: ignore[arg-type]
        raw = Path(tmp.name)
        hasher = hashlib.sha256()
        with raw.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(chunk)
        digest = hasher.hexdigest()
        size = raw.stat().st_size
        raw.replace(self.dir / digest)
        return {"mediaType": LAYER_TYPE, "digest": f"sha256:{digest}", "size": size}, digest


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_archive(
    out: Path, name: str, layers: list[Layer], config: ImageConfig
) -> tuple[str, str]:
    """Writes an OCI layout tarball for one linux/amd64 image; returns name and digest.

    `name` (e.g. localhost/replicant/pause:1) is what containerd lists after import;
    "{digest}" in it is replaced by the first 12 hex digits of the manifest digest, which
    the name (an index annotation) does not affect.
    """
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        root = Path(tmp)
        blobs = _Blobs(root)
        descriptors, diff_ids = [], []
        for layer in layers:
            descriptor, diff_id = blobs.put_layer(layer)
            descriptors.append(descriptor)
            diff_ids.append(f"sha256:{diff_id}")
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "config": config.as_json(),
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": blobs.put(_canonical(image_config), CONFIG_TYPE),
            "layers": descriptors,
        }
        manifest_descriptor = blobs.put(_canonical(manifest), MANIFEST_TYPE)
        name = name.replace("{digest}", manifest_descriptor["digest"][7:19])
        manifest_descriptor["annotations"] = {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
        }
        index = {"schemaVersion": 2, "manifests": [manifest_descriptor]}
        (root / "index.json").write_bytes(_canonical(index))
        (root / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
        _tar_folder(root, out)
        return name, str(manifest_descriptor["digest"])


def _tar_folder(root: Path, out: Path) -> None:
    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = LAYER_MTIME, 0, 0, "", ""
        return info

    partial = out.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for path in sorted(root.rglob("*")):
            tar.add(
                path, arcname=path.relative_to(root).as_posix(), recursive=False, filter=normalise
            )
    partial.replace(out)

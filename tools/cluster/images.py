"""The real node's images: the pod sandbox (pause) and replicant's e2e image.

Neither comes from a registry. pause is the project's own static program
(tools/pause/, built by `tools/install.sh --node`). The e2e image is replicant built
from the inputs of the release image (server/BUILD.bazel `//server:image`): the same
application sources and stubs, the runtime part of requirements_lock.txt installed
with --require-hashes, the same entrypoint path, user, working directory and env. Its
base is Debian 12 packages (the release base is debian:bookworm-slim), unpacked with
dpkg-deb, instead of a base image that only a registry serves; its interpreter is
Debian's python3.11, where the release image carries rules_python's hermetic CPython
3.11 under /app/server/server.runfiles (only GitHub serves that download). The release image
stays Bazel's; tools/tests/test_e2e_image_layout.py keeps the two layouts in step.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tools.cluster import oci
from tools.cluster.paths import REPO_ROOT

# What //server:image sets (server/BUILD.bazel); the layout test compares them.
APP_DIR = "/app"
ENTRYPOINT = ("/app/server/server",)
USER = "65532:65532"
ENV = ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
EXPOSED_PORTS = ("8080/tcp", "8443/tcp")
# The release base (debian:bookworm-slim) sets only PATH; //server:image adds ENV.
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)

PAUSE_NAME = "localhost/replicant/pause"
REPLICANT_NAME = "localhost/replicant/replicant"

# Debian 12, the release base's release, whatever the building host runs: apt with a
# private state folder and these sources, verified with Debian's archive keyring.
_KEYRING = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
DEBIAN_SOURCES = "".join(
    f"deb {_KEYRING} http://deb.debian.org/{archive} {suite} main\n"
    for archive, suite in (
        ("debian", "bookworm"),
        ("debian", "bookworm-updates"),
        ("debian-security", "bookworm-security"),
    )
)

# Debian 12 runtime of python3.11 and of the wheels' native code (libstdc++ for grpcio,
# libssl3 for cryptography's users). Closed over by hand: `apt-cache depends --recurse`
# also drags in dpkg and perl, which nothing here runs.
DEBIAN_PACKAGES = (
    "gcc-12-base",
    "libbz2-1.0",
    "libc6",
    "libcom-err2",
    "libcrypt1",
    "libdb5.3",
    "libexpat1",
    "libffi8",
    "libgcc-s1",
    "libgdbm-compat4",
    "libgdbm6",
    "libgssapi-krb5-2",
    "libk5crypto3",
    "libkeyutils1",
    "libkrb5-3",
    "libkrb5support0",
    "liblzma5",
    "libncursesw6",
    "libnsl2",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libreadline8",
    "libsqlite3-0",
    "libssl3",
    "libstdc++6",
    "libtinfo6",
    "libtirpc-common",
    "libtirpc3",
    "libuuid1",
    "media-types",
    "python3.11-minimal",
    "zlib1g",
)
# Documentation and translations: a tenth of the bytes, never read.
_SKIPPED_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/locale/", "usr/share/lintian/")

# The Bazel launcher runs `python -m server` with the runfiles on sys.path; this one
# does the same. -P: the script's folder (/app/server) must not shadow the standard
# library (server/http.py would hide `http`).
LAUNCHER = """#!/usr/bin/python3.11 -P
# replicant's e2e image entrypoint: what the Bazel py_binary launcher does, without Bazel.
import runpy
import sys

sys.path[:0] = ["/app", "/app/gen", "/app/site-packages"]
runpy.run_module("server", run_name="__main__", alter_sys=True)
"""
# Every first-party package `python -m server` imports (tools/tests/test_e2e_image_layout.py).
APP_PACKAGES = ("server", "reconciler", "kube", "proto")


class ImageError(RuntimeError):
    """An image could not be built; the message names the step and its output."""


@dataclass(frozen=True)
class Built:
    name: str  # repository:tag, as the chart's image values want it
    archive: Path
    digest: str


def _run(argv: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImageError(f"{' '.join(argv[:3])} ... failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def _run_bytes(argv: list[str]) -> bytes:
    result = subprocess.run(argv, capture_output=True, check=False)
    if result.returncode != 0:
        raise ImageError(f"{argv[0]} failed: {result.stderr.decode(errors='replace')[-2000:]}")
    return result.stdout


def release_config() -> oci.ImageConfig:
    return oci.ImageConfig(
        entrypoint=ENTRYPOINT,
        user=USER,
        workdir=APP_DIR,
        env=BASE_ENV + ENV,
        exposed_ports=EXPOSED_PORTS,
    )


# -- pause ------------------------------------------------------------------


def pause_image(binary: Path, out_dir: Path) -> Built:
    data = binary.read_bytes()
    layer = oci.Layer().add([oci.file("pause", data, 0o755)])
    config = oci.ImageConfig(entrypoint=("/pause",), user="65535:65535", workdir="/", env=())
    archive = out_dir / "pause.tar"
    name, digest = oci.write_archive(archive, f"{PAUSE_NAME}:{{digest}}", [layer], config)
    return Built(name, archive, digest)


# -- replicant ----------------------------------------------------------------


def runtime_requirements(lock_text: str, roots: list[str]) -> str:
    """The blocks of the lock file (pins and hashes) that the runtime closure needs.

    pip-compile writes `# via X` under each pin; a package is runtime when it is in
    requirements.in or something runtime pulls it in. Same pins, same hashes: the
    image gets exactly what the lock file says, and none of the dev tools.
    """
    blocks: dict[str, tuple[str, set[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock_text):
        head = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", block)
        if head is None:
            continue
        via = set(re.findall(r"#\s+(?:via\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*$", block, re.M))
        via |= {"-r requirements.in"} if "-r requirements.in" in block else set()
        blocks[_normal(head.group(1))] = (block.rstrip() + "\n", {_normal(v) for v in via})
    wanted = {_normal(root) for root in roots}
    changed = True
    while changed:
        changed = False
        for name, (_, via) in blocks.items():
            if name not in wanted and via & wanted:
                wanted.add(name)
                changed = True
    missing = {_normal(root) for root in roots} - blocks.keys()
    if missing:
        raise ImageError(f"requirements_lock.txt has no pin for {sorted(missing)}")
    return "".join(blocks[name][0] for name in sorted(wanted) if name in blocks)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_roots(requirements_in: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in requirements_in.read_text().splitlines())
    return [line for line in lines if line]


def _private_apt(cache: Path) -> list[str]:
    """apt-get options for an apt of our own below `cache` (lists, sources, no root)."""
    root = cache / "apt"
    for folder in (root / "lists" / "partial", root / "archives" / "partial"):
        folder.mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text(DEBIAN_SOURCES)
    (root / "status").touch()
    return [
        "-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=-",
        "-o", f"Dir::State::Lists={root / 'lists'}",
        "-o", f"Dir::State::status={root / 'status'}",
        "-o", f"Dir::Cache={root}",
        "-o", "APT::Architecture=amd64",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip


def _debian_layer(cache: Path) -> tuple[oci.Layer, str]:
    """Debian's packages, downloaded by apt (verified against the archive's signed
    lists) and unpacked as dpkg would, without maintainer scripts."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    apt = _private_apt(cache)
    if not any((cache / "apt" / "lists").glob("*Packages*")):
        _run(["apt-get", *apt, "update", "-q"])
    try:
        _run(["apt-get", *apt, "download", "-q", *DEBIAN_PACKAGES], cwd=debs)
    except ImageError:  # lists older than a package the archive replaced
        _run(["apt-get", *apt, "update", "-q"])
        _run(["apt-get", *apt, "download", "-q", *DEBIAN_PACKAGES], cwd=debs)
    layer = oci.Layer()
    versions = []
    for package in DEBIAN_PACKAGES:
        deb = _newest_deb(debs, package)
        versions.append(deb.name)
        layer.add(_deb_members(_run_bytes(["dpkg-deb", "--fsys-tarfile", str(deb)])))
    layer.add(_base_files())
    return layer, " ".join(sorted(versions))


def _newest_deb(debs: Path, package: str) -> Path:
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise ImageError(f"apt-get download left no {package}_*.deb in {debs}")
    return found[-1]


def _deb_members(fsys_tar: bytes) -> list[oci.Member]:
    import io

    members = []
    with tarfile.open(fileobj=io.BytesIO(fsys_tar), mode="r:") as tar:
        for info in tar:
            name = info.name.removeprefix("./").rstrip("/")
            if not name or name.startswith(_SKIPPED_PREFIXES):
                continue
            info.name, info.uid, info.gid = name, 0, 0
            if info.islnk():
                info.linkname = info.linkname.removeprefix("./")
            data = tar.extractfile(info).read() if info.isreg() else b""  # type: ignore[union-attr]
            members.append(oci.Member(info, data))
    return members


def _base_files() -> list[oci.Member]:
    """The accounts, folders and links a distroless-style base provides."""
    return [
        oci.file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/sbin/nologin\n"
            b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
        ),
        oci.file("etc/group", b"root:x:0:\nnonroot:x:65532:\n"),
        oci.file("etc/os-release", b'PRETTY_NAME="replicant e2e base (Debian 12 packages)"\n'),
        oci.directory("home/nonroot", 0o700, uid=65532),
        oci.directory("tmp", 0o1777),
        oci.directory("root", 0o700),
        oci.symlink("usr/bin/python3", "python3.11"),
    ]


def _packages_layer(cache: Path, python: Path) -> oci.Layer:
    lock = runtime_requirements(
        (REPO_ROOT / "requirements_lock.txt").read_text(),
        _requirement_roots(REPO_ROOT / "requirements.in"),
    )
    key = hashlib.sha256(lock.encode()).hexdigest()[:16]
    target = cache / f"site-packages-{key}"
    if not (target / ".complete").exists():
        requirements = cache / f"requirements-{key}.txt"
        requirements.write_text(lock)
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--require-hashes",
                "--no-deps",
                "--only-binary=:all:",
                "--no-compile",
                "--target",
                str(target),
                "-r",
                str(requirements),
            ]
        )
        (target / ".complete").touch()
    layer = oci.Layer().add(oci.tree(target, f"{APP_DIR}/site-packages"))
    layer.members.pop(f"{APP_DIR.strip('/')}/site-packages/.complete", None)
    return layer


def _app_layer(gen_dir: Path) -> oci.Layer:
    layer = oci.Layer().add([oci.directory(APP_DIR)])
    for package in APP_PACKAGES:
        members = oci.tree(REPO_ROOT / package, f"{APP_DIR}/{package}")
        layer.add(m for m in members if not m.info.name.endswith(("BUILD.bazel", ".proto")))
    layer.add(oci.tree(gen_dir, f"{APP_DIR}/gen"))
    layer.add([oci.file(ENTRYPOINT[0], LAUNCHER.encode(), 0o755)])
    return layer


def replicant_image(out_dir: Path, cache: Path, gen_dir: Path, python: Path) -> Built:
    """Builds the e2e image archive; the tag is the hash of everything in it."""
    base, versions = _debian_layer(cache)
    layers = [base, _packages_layer(cache, python), _app_layer(gen_dir)]
    config = release_config()
    config = oci.ImageConfig(
        config.entrypoint,
        config.user,
        config.workdir,
        config.env,
        config.exposed_ports,
        labels=(("dev.replicant.debian-packages", versions),),
    )
    archive = out_dir / "replicant.tar"
    name, digest = oci.write_archive(archive, f"{REPLICANT_NAME}:e2e-{{digest}}", layers, config)
    return Built(name, archive, digest)


if __name__ == "__main__":  # manual use: python -m tools.cluster.images <out-dir>
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    print(replicant_image(out, out / "cache", REPO_ROOT / "gen", Path(sys.executable)))

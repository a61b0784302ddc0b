"""Release artifacts for replicant, byte-for-byte reproducible from a commit.

`make release VERSION=x.y.z` runs `python -m tools.release all`, which writes dist/<version>/:

  replicant-<version>.tgz        Helm chart, repacked with fixed mtimes/owners/order, gzip -n;
                                 its values.yaml names the image repository and index digest
  sbom.cdx.json                  CycloneDX SBOM of the locked Python dependencies
  image-index.digest             multi-arch image index digest
  replicant-<version>-oci.tar    OCI layout tarball of that index
  RELEASE_NOTES.md               stub to edit before publishing
  SHA256SUMS                     sha256sum -c compatible, over everything above

A release fails closed: without Bazel (or when the image does not build) it exits
non-zero and writes nothing: it is built beside dist/<version>/ and moved into place only
when complete, so a failed build leaves an earlier release there untouched. `dry-run`
(`make release-dry-run`) is the only way to get the chart, SBOM and checksums without an
image; its chart keeps an empty digest and its notes say DRY RUN. SOURCE_DATE_EPOCH
(default: the HEAD commit time) is the only clock.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tools import sbom

REPO = Path(__file__).resolve().parents[1]
CHART_DIR = REPO / "charts" / "replicant"
IMAGE_INDEX = "//server:image_index"
IMAGE_INDEX_TARBALL = "//server:image_index_tarball"
# Where release.yml pushes the index (server/BUILD.bazel //server:push); the chart's
# values point there.
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/replicant-dev/replicant"
NO_BAZEL = (
    "cannot build the image: Bazel is not installed (need `bazel` or `bazelisk` on PATH, "
    "version from .bazelversion). A release without its image is not a release; for a "
    "chart-only dry run use `make release-dry-run`."
)


# One string, so `make release` passes $(BAZEL_FLAGS) through whole; argparse needs the `=`.
FLAGS_HELP = "Bazel flags as one string: --bazel-flags='--config=release --config=locked'"


class ReleaseError(Exception):
    """A release step failed in a way the person running it can act on."""


def source_date_epoch() -> int:
    if env := os.environ.get("SOURCE_DATE_EPOCH"):
        return int(env)
    git = shutil.which("git")
    if git is None:
        return 0
    out = subprocess.run(
        [git, "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else 0


def repack_reproducibly(source: Path, destination: Path, epoch: int) -> None:
    """Rewrites a .tgz with sorted entries, fixed mtime/uid/gid/mode and a gzip -n header."""
    with tarfile.open(source, "r:gz") as original:
        members = sorted(original.getmembers(), key=lambda m: m.name)
        payload = io.BytesIO()
        with tarfile.open(fileobj=payload, mode="w", format=tarfile.GNU_FORMAT) as repacked:
            for member in members:
                info = tarfile.TarInfo(member.name)
                info.mtime = epoch
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if member.isdir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    repacked.addfile(info)
                elif member.isfile():
                    data = original.extractfile(member)
                    if data is None:
                        raise ReleaseError(f"cannot read {member.name} from {source}")
                    content = data.read()
                    info.size = len(content)
                    info.mode = 0o755 if member.mode & 0o111 else 0o644
                    repacked.addfile(info, io.BytesIO(content))
                else:
                    raise ReleaseError(f"{source}: unexpected entry type for {member.name}")
    with (
        destination.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(payload.getvalue())


def pin_image_values(values: str, repository: str, digest: str) -> str:
    """values.yaml text with image.repository and image.digest set, comments kept.

    A text edit, not a YAML round trip, so the packaged values.yaml keeps its
    documentation; each key must appear exactly once directly under `image:`.
    """
    lines = values.splitlines(keepends=True)
    try:
        start = lines.index("image:\n")
    except ValueError:
        raise ReleaseError("values.yaml has no top-level `image:` block") from None
    wanted = {"repository": repository, "digest": digest}
    seen: set[str] = set()
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if line.strip() and not line.startswith(" "):
            break
        key = line.strip().split(":", 1)[0]
        if line.startswith("  ") and not line.startswith("   ") and key in wanted:
            if key in seen:
                raise ReleaseError(f"values.yaml sets image.{key} twice")
            seen.add(key)
            lines[number] = f"  {key}: {json.dumps(wanted[key])}\n"
    if missing := sorted(set(wanted) - seen):
        raise ReleaseError(f"values.yaml has no image.{', image.'.join(missing)}")
    return "".join(lines)


def package_chart(
    helm: str,
    version: str,
    out_dir: Path,
    epoch: int,
    *,
    image_repository: str = DEFAULT_IMAGE_REPOSITORY,
    image_digest: str = "",
    chart: Path = CHART_DIR,
) -> Path:
    """`helm package` (which validates the chart) of a copy whose values pin the image,
    then a reproducible repack."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "chart" / chart.name
        shutil.copytree(chart, staged)
        values = staged / "values.yaml"
        values.write_text(pin_image_values(values.read_text(), image_repository, image_digest))
        packaged_dir = Path(tmp) / "packaged"
        subprocess.run(
            [
                helm,
                "package",
                str(staged),
                "--version",
                version,
                "--app-version",
                version,
                "--destination",
                str(packaged_dir),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        packaged = sorted(packaged_dir.glob("*.tgz"))
        if len(packaged) != 1:
            raise ReleaseError(f"helm package produced {packaged}, expected one .tgz")
        destination = out_dir / packaged[0].name
        repack_reproducibly(packaged[0], destination, epoch)
    return destination


def write_checksums(directory: Path) -> Path:
    lines = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.name != "SHA256SUMS"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    target = directory / "SHA256SUMS"
    target.write_text("".join(lines))
    return target


def _bazel_outputs(bazel: str, flags: list[str], target: str) -> list[Path]:
    out = subprocess.run(
        [bazel, "cquery", *flags, "--output=files", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [REPO / line for line in out.split()]


def layout_digest(layout: Path) -> str:
    """Digest of the manifest (or index) an OCI layout directory points at."""
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


def build_image(bazel: str, flags: list[str], version: str, out_dir: Path) -> str:
    subprocess.run([bazel, "build", *flags, IMAGE_INDEX, IMAGE_INDEX_TARBALL], cwd=REPO, check=True)
    digest = layout_digest(_bazel_outputs(bazel, flags, IMAGE_INDEX)[0])
    tarball = _bazel_outputs(bazel, flags, IMAGE_INDEX_TARBALL)[0]
    shutil.copyfile(tarball, out_dir / f"replicant-{version}-oci.tar")
    (out_dir / "image-index.digest").write_text(digest + "\n")
    return digest


def write_notes(version: str, out_dir: Path, image: str | None) -> Path:
    """Release notes; image is repository@digest, or None for a dry run."""
    line = (
        f"- Image index (linux/amd64, linux/arm64): `{image}`\n"
        if image
        else "- Image: none. DRY RUN (`make release-dry-run`): not a release, do not publish\n"
    )
    notes = out_dir / "RELEASE_NOTES.md"
    title = f"# replicant {version}" + ("" if image else " (dry run)")
    notes.write_text(
        f"{title}\n\n"
        "## Highlights\n\n- TODO: summarise user-visible changes.\n\n"
        "## Upgrade notes\n\n- TODO: CRD or values changes, if any.\n\n"
        "## Artifacts\n\n"
        f"{line}"
        f"- Helm chart: `replicant-{version}.tgz`\n"
        "- SBOM (CycloneDX, Python dependencies): `sbom.cdx.json`\n"
        "- Verify: `sha256sum -c SHA256SUMS`\n"
    )
    return notes


def release_all(args: argparse.Namespace) -> int:
    """The release (image first: no image, no release) or, with dry_run, everything else;
    written to a folder beside args.out that replaces it only once complete."""
    if not args.dry_run and not args.bazel:
        raise ReleaseError(NO_BAZEL)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{args.out.name}-", dir=args.out.parent) as tmp:
        staged = Path(tmp) / args.out.name
        staged.mkdir()
        write_release(args, staged)
        if args.out.exists():
            args.out.rename(Path(tmp) / "replaced")  # removed with tmp
        staged.rename(args.out)
    print(f"{'DRY RUN (no image, not publishable)' if args.dry_run else 'done'}: {args.out}")
    return 0


def write_release(args: argparse.Namespace, out_dir: Path) -> None:
    epoch = args.epoch if args.epoch is not None else source_date_epoch()
    digest = ""
    if not args.dry_run:
        digest = build_image(args.bazel, shlex.split(args.bazel_flags), args.version, out_dir)
    if digest:
        print(f"image:  {args.image_repository}@{digest}")
    chart = package_chart(
        args.helm,
        args.version,
        out_dir,
        epoch,
        image_repository=args.image_repository,
        image_digest=digest,
    )
    print(f"chart:  {chart.name}")
    sbom.write(out_dir / "sbom.cdx.json", args.version, epoch)
    write_notes(args.version, out_dir, f"{args.image_repository}@{digest}" if digest else None)
    write_checksums(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="replicant release artifacts")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("all", "every artifact into --out; fails without Bazel"),
        ("dry-run", "chart, SBOM, notes and checksums without the image (not a release)"),
    ):
        everything = sub.add_parser(command, help=help_text)
        everything.set_defaults(dry_run=command == "dry-run")
        everything.add_argument("--version", required=True)
        everything.add_argument("--out", type=Path, required=True)
        everything.add_argument("--helm", required=True, help="path to the pinned helm")
        everything.add_argument("--bazel", default="", help="bazel/bazelisk path (all)")
        everything.add_argument("--bazel-flags", default="--config=release", help=FLAGS_HELP)
        everything.add_argument("--image-repository", default=DEFAULT_IMAGE_REPOSITORY)
        everything.add_argument("--epoch", type=int, default=None)
    digest = sub.add_parser("image", help="build the image index and host tarball, print digests")
    digest.add_argument("--bazel", required=True)
    digest.add_argument("--bazel-flags", default="", help=FLAGS_HELP)
    args = parser.parse_args(argv)
    try:
        if args.command in ("all", "dry-run"):
            return release_all(args)
        return show_image(args.bazel, shlex.split(args.bazel_flags))
    except (ReleaseError, subprocess.CalledProcessError) as error:
        print(f"release: {error}", file=sys.stderr)
        return 1


def show_image(bazel: str, flags: list[str]) -> int:
    targets = [IMAGE_INDEX, "//server:image_host", "//server:image_tarball"]
    subprocess.run([bazel, "build", *flags, *targets], cwd=REPO, check=True)
    index = layout_digest(_bazel_outputs(bazel, flags, IMAGE_INDEX)[0])
    host = layout_digest(_bazel_outputs(bazel, flags, "//server:image_host")[0])
    tarball = _bazel_outputs(bazel, flags, "//server:image_tarball")[0]
    print(f"image index digest (linux/amd64+arm64): {index}")
    print(f"host image digest:                      {host}")
    print(f"docker tarball (replicant:dev):         {tarball}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

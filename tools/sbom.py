"""CycloneDX 1.5 SBOM of replicant's Python dependencies, from requirements_lock.txt.

The lock file is the single source of truth for both build paths, so the SBOM is
derived from it rather than from an installed environment. Runtime packages (what the
image ships: requirements.in and everything it pulls in) get scope "required"; packages
only needed for development or the build (requirements-dev.in closure) get scope
"excluded" and the property replicant:dependency-group=dev. The output is
deterministic: no wall-clock time unless SOURCE_DATE_EPOCH is given, sorted content,
serial number derived from the content.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_REQ = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:(?P<hex>[0-9a-f]{64})")
_VIA = re.compile(r"^\s+#\s+(?:via\s+)?(?P<what>\S.*)$")


def normalize(name: str) -> str:
    """PEP 503 name: what purls and the lock file agree on."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class LockedPackage:
    name: str
    version: str
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)  # parents, or "-r <file>" for roots


def parse_lock(text: str) -> dict[str, LockedPackage]:
    """Packages of a pip-compile --generate-hashes file with their `# via` parents."""
    packages: dict[str, LockedPackage] = {}
    current: LockedPackage | None = None
    in_via = False
    for line in text.splitlines():
        if match := _REQ.match(line):
            current = LockedPackage(normalize(match["name"]), match["version"])
            packages[current.name] = current
            in_via = False
        if current is None:
            continue
        current.hashes.extend(m["hex"] for m in _HASH.finditer(line))
        if (via := _VIA.match(line)) and not line.strip().startswith("--hash"):
            what = via["what"].strip()
            if line.strip().startswith("# via"):
                in_via = True
            if in_via and what and not what.startswith("via"):
                current.via.append(what if what.startswith("-r") else normalize(what))
        elif not line.startswith(" "):
            in_via = False
    return packages


def runtime_closure(packages: dict[str, LockedPackage], root_file: str) -> set[str]:
    """Packages required (directly or transitively) by the requirements file `root_file`."""
    runtime = {p.name for p in packages.values() if f"-r {root_file}" in p.via}
    changed = True
    while changed:
        changed = False
        for package in packages.values():
            if package.name not in runtime and any(parent in runtime for parent in package.via):
                runtime.add(package.name)
                changed = True
    return runtime


def build_sbom(
    lock_text: str, version: str, root_file: str = "requirements.in", epoch: int | None = None
) -> dict[str, object]:
    packages = parse_lock(lock_text)
    runtime = runtime_closure(packages, root_file)
    components = []
    for package in sorted(packages.values(), key=lambda p: p.name):
        group = "runtime" if package.name in runtime else "dev"
        components.append(
            {
                "type": "library",
                "bom-ref": f"pkg:pypi/{package.name}@{package.version}",
                "name": package.name,
                "version": package.version,
                "purl": f"pkg:pypi/{package.name}@{package.version}",
                "scope": "required" if group == "runtime" else "excluded",
                "hashes": [{"alg": "SHA-256", "content": h} for h in sorted(set(package.hashes))],
                "properties": [{"name": "replicant:dependency-group", "value": group}],
            }
        )
    metadata: dict[str, object] = {
        "component": {
            "type": "application",
            "bom-ref": f"replicant@{version}",
            "name": "replicant",
            "version": version,
        },
        "properties": [{"name": "replicant:source", "value": "requirements_lock.txt"}],
    }
    if epoch is not None:
        metadata["timestamp"] = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"components": components, "metadata": metadata}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'replicant-sbom:' + digest)}",
        "version": 1,
        **body,
    }


def write(output: Path, version: str, epoch: int) -> None:
    """The release's sbom.cdx.json, from requirements_lock.txt."""
    sbom = build_sbom((REPO / "requirements_lock.txt").read_text(), version, epoch=epoch)
    output.write_text(json.dumps(sbom, indent=2, sort_keys=True) + "\n")

"""Offline JSON schemas for `kubeconform -strict`: built-in kinds and the chart's CRD.

Why it exists: kubeconform validates against JSON schemas it normally downloads from
GitHub, which is unreachable here. The same facts are available offline:

- built-in kinds: the OpenAPI v3 documents Kubernetes publishes. They ship inside the
  k8s.io/kubernetes Go module (api/openapi-spec/v3/, already in the module cache because
  `make tools` builds the control plane from it); any API server serves them at /openapi/v3;
- ReplicaTarget: the openAPIV3Schema of charts/replicant/files/*.yaml, the single source
  of truth for the CRD.

Output layout (kubeconform `-schema-location '<out>/{{ .Group }}/{{ .ResourceKind
}}_{{ .ResourceAPIVersion }}.json'`): `<out>/<group>/<kind>_<version>.json`, lower-case,
where <group> is the API group, or the version for the core group (kubeconform's
`.Group` for apiVersion "v1" is "v1"). Every object schema that lists properties and
does not say otherwise gets `additionalProperties: false`, which is what makes
kubeconform's `-strict` reject unknown fields. `$ref`s are rewritten to local
`#/definitions/...`, so recursive types need no inlining.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

JSON = dict[str, Any]
COMPONENT_REF = re.compile(r"^#/components/schemas/(.+)$")


def strictify(schema: Any) -> Any:
    """Copy of schema with additionalProperties false on every closed object."""
    if isinstance(schema, list):
        return [strictify(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strictify(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _rewrite_refs(schema: Any, found: set[str]) -> Any:
    """Point component $refs at local definitions; collect the names referenced."""
    if isinstance(schema, list):
        return [_rewrite_refs(item, found) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    for key, value in schema.items():
        match = COMPONENT_REF.match(value) if key == "$ref" and isinstance(value, str) else None
        if match:
            found.add(match.group(1))
            out[key] = f"#/definitions/{match.group(1)}"
        else:
            out[key] = _rewrite_refs(value, found)
    return out


def kind_schema(name: str, components: JSON) -> JSON:
    """The schema of component `name` with every schema it reaches as definitions."""
    definitions: JSON = {}
    pending = {name}
    while pending:
        current = pending.pop()
        refs: set[str] = set()
        definitions[current] = strictify(_rewrite_refs(components[current], refs))
        pending |= {ref for ref in refs if ref not in definitions}
    root: JSON = copy.deepcopy(definitions[name])
    root["definitions"] = definitions
    return root


def _file_for(group: str, version: str, kind: str) -> Path:
    return Path(group or version) / f"{kind.lower()}_{version}.json"


def schemas_from_openapi(document: JSON) -> dict[Path, JSON]:
    """Every top-level kind of one OpenAPI v3 group-version document."""
    components: JSON = document.get("components", {}).get("schemas", {})
    result: dict[Path, JSON] = {}
    for name, schema in components.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            # Kinds that are only wire envelopes (WatchEvent, DeleteOptions, ...) are
            # harmless extras; lists and real objects are what manifests use.
            path = _file_for(gvk.get("group", ""), gvk["version"], gvk["kind"])
            result.setdefault(path, kind_schema(name, components))
    return result


def schemas_from_crd(crd: JSON) -> dict[Path, JSON]:
    """One schema per served version of a CustomResourceDefinition."""
    spec = crd["spec"]
    result: dict[Path, JSON] = {}
    for version in spec["versions"]:
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if schema is not None:
            path = _file_for(spec["group"], version["name"], spec["names"]["kind"])
            result[path] = strictify(schema)
    return result


def read_openapi_dir(directory: Path) -> list[JSON]:
    """The *.json OpenAPI v3 documents of a directory (k8s api/openapi-spec/v3 layout)."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise SystemExit(f"no OpenAPI v3 *.json documents in {directory}")
    return [json.loads(path.read_text()) for path in files]


def write(schemas: dict[Path, JSON], out: Path) -> int:
    for relative, schema in schemas.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, sort_keys=True) + "\n")
    return len(schemas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m charts.kubeconform_schemas",
        description="Write strict kubeconform schemas from OpenAPI v3 documents and CRDs.",
    )
    parser.add_argument(
        "--openapi-dir", type=Path, required=True, help="directory of OpenAPI v3 documents"
    )
    parser.add_argument("--crd", type=Path, action="append", default=[], help="CRD file")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    schemas: dict[Path, JSON] = {}
    for document in read_openapi_dir(args.openapi_dir):
        schemas.update(schemas_from_openapi(document))
    for crd_file in args.crd:
        for crd in yaml.safe_load_all(crd_file.read_text()):
            if crd and crd.get("kind") == "CustomResourceDefinition":
                schemas.update(schemas_from_crd(crd))
    count = write(schemas, args.out)
    print(f"wrote {count} schemas to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

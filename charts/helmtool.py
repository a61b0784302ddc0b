"""Drive the pinned helm binary from tests: render the chart, install, upgrade.

Why it exists: the static chart tests (charts/tests/) and the e2e chart tests
(e2e/test_chart_*.py) need the same few helm calls with the same flags (the pinned
Kubernetes version for capabilities, values as files), and parsed manifests back.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.cluster.paths import REPO_ROOT, bin_dir

CHART_DIR = REPO_ROOT / "charts" / "replicant"
ALL_OPTIONS_VALUES = CHART_DIR / "ci" / "all-options-values.yaml"
# The defaults plus the API server CIDRs, which an offline render cannot look up.
OFFLINE_VALUES = CHART_DIR / "ci" / "offline-values.yaml"
# The CRD's one source: the chart renders it (crds.enabled), kubectl applies it elsewhere.
CRD_FILE = CHART_DIR / "files" / "replicatargets.replicant.dev.yaml"
HELM_TIMEOUT_S = 360.0
# The dev image every test install runs: what `make deploy` builds (//server:image_load) and
# loads into kind. On the local control plane kwok never pulls it. A test's values win.
DEV_IMAGE = {"image": {"repository": "replicant", "tag": "dev", "pullPolicy": "Never"}}

Manifest = dict[str, Any]


class HelmError(AssertionError):
    """helm exited non-zero; the message carries its stderr."""


def kubernetes_version() -> str:
    """KUBERNETES_VERSION from tools/versions.env (what the local control plane runs)."""
    for line in (REPO_ROOT / "tools" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("KUBERNETES_VERSION missing from tools/versions.env")


def helm_binary() -> Path:
    return bin_dir() / "helm"


def run_helm(
    *args: str, kubeconfig: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = [str(helm_binary()), *args]
    if kubeconfig is not None:
        argv.insert(1, f"--kubeconfig={kubeconfig}")
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=HELM_TIMEOUT_S, check=False, cwd=REPO_ROOT
    )
    if check and done.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def values_args(values: dict[str, Any] | None, files: tuple[Path, ...], workdir: Path) -> list[str]:
    """--values flags: the files, then `values` written as one more file (it wins)."""
    args = [arg for path in files for arg in ("--values", str(path))]
    if values:
        path = workdir / "values.json"
        path.write_text(json.dumps(values))
        args += ["--values", str(path)]
    return args


def template_text(
    values: dict[str, Any] | None = None,
    files: tuple[Path, ...] = (OFFLINE_VALUES,),
    *,
    release: str = "replicant",
    namespace: str = "replicant-system",
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with the pinned Kubernetes version.

    Offline, so by default with OFFLINE_VALUES: the chart's own defaults fail to render
    without a cluster to read the API server endpoints from (pass files=() to see it)."""
    with tempfile.TemporaryDirectory() as workdir:
        return run_helm(
            "template",
            release,
            str(CHART_DIR),
            "--namespace",
            namespace,
            "--kube-version",
            kubernetes_version(),
            *values_args(values, files, Path(workdir)),
            check=check,
        )


def render(
    values: dict[str, Any] | None = None,
    files: tuple[Path, ...] = (OFFLINE_VALUES,),
    *,
    release: str = "replicant",
    namespace: str = "replicant-system",
) -> list[Manifest]:
    """The rendered manifests (hooks such as the test pod included), parsed."""
    text = template_text(values, files, release=release, namespace=namespace).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        doc
        for doc in manifests
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@dataclass(frozen=True)
class Release:
    """A chart release on a cluster, reached with kubeconfig."""

    name: str
    namespace: str
    kubeconfig: Path

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_helm(*args, "--namespace", self.namespace, kubeconfig=self.kubeconfig,
                        check=check)  # fmt: skip

    def install(
        self, values: dict[str, Any], workdir: Path, *, upgrade: bool = False,
        chart: Path = CHART_DIR,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """`helm install` (or `helm upgrade`) --wait of the dev image, from `chart`.

        --take-ownership: the CRD is cluster-wide and shared by every test (the e2e fixtures
        apply it with kubectl, an earlier release left it behind with `keep`); each adopts it.
        """
        verb = "upgrade" if upgrade else "install"
        image = workdir / "dev-image.json"
        image.write_text(json.dumps(DEV_IMAGE))
        return self.helm(
            verb, self.name, str(chart), "--wait", "--timeout", "4m", "--take-ownership",
            "--values", str(image), *values_args(values, (), workdir),
        )  # fmt: skip


def api_server_cidrs(kubeconfig: Path) -> list[str]:
    """The API server endpoints the chart's NetworkPolicy must allow on this cluster, found the
    way the chart's values tell a user to (the EndpointSlices of default/kubernetes), or
    127.0.0.1/32 where there are none: the local control plane (tools/cluster) has no endpoint
    reconciler and serves on loopback."""
    done = subprocess.run(
        [str(bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", "get", "endpointslices",
         "-n", "default", "-l", "kubernetes.io/service-name=kubernetes", "-o", "json"],
        capture_output=True, text=True, timeout=HELM_TIMEOUT_S, check=True,
    )  # fmt: skip
    cidrs = [
        f"{address}/{32 if item.get('addressType') == 'IPv4' else 128}"
        for item in json.loads(done.stdout)["items"]
        for endpoint in item.get("endpoints") or []
        for address in endpoint.get("addresses") or []
    ]
    return sorted(set(cidrs)) or ["127.0.0.1/32"]


def api_server_values(kubeconfig: Path) -> dict[str, Any]:
    """The values every e2e install needs on this cluster: networkPolicy.egress.apiServer.cidrs."""
    return {
        "networkPolicy": {"egress": {"apiServer": {"cidrs": api_server_cidrs(kubeconfig)}}},
    }


def tls_secret_manifests(release: str, namespace: str, pki: Path) -> list[Manifest]:
    """The Secrets the chart mounts by default, from a dev PKI folder (tools/devcerts.py).

    <release>-tls: the server pair and the server CA; <release>-client-ca: the client CA, the
    only one the server trusts; <release>-test-client: the `helm test` client ("nobody")."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    def secret(name: str, data: dict[str, Path]) -> Manifest:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": {key: b64(path) for key, path in data.items()},
        }

    return [
        secret(f"{release}-tls", {"tls.crt": pki / "server.crt", "tls.key": pki / "server.key",
                                  "ca.crt": pki / "ca.crt"}),
        secret(f"{release}-client-ca", {"ca.crt": pki / "client-ca.crt"}),
        secret(f"{release}-test-client", {"tls.crt": pki / "nobody.crt",
                                          "tls.key": pki / "nobody.key"}),
    ]  # fmt: skip


if __name__ == "__main__":
    # `python -m charts.helmtool KUBECONFIG`: the CIDRs as JSON, for `make deploy` (--set-json).
    import sys

    print(json.dumps(api_server_cidrs(Path(sys.argv[1]))))

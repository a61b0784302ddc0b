"""The chart installed on a real API server: RBAC matrix, Pod Security, NOTES, lookups.

The pods run replicant:dev (kind: loaded by `make deploy`; kwok runs no image). What is
tested is what the API server decides: admission (the `restricted` Pod Security Standard, the
ReplicaTarget policy), RBAC as the ServiceAccount sees it (`kubectl auth can-i --as`), what
`helm install` prints, and what the chart renders when it can see the cluster
(`helm template --dry-run=server`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from charts import helmtool
from e2e.cluster_fixtures import get_json
from e2e.reconciler_support import identity, replica_target
from replicant.v1 import replicant_pb2
from tools import devcerts
from tools.ci import require_tools
from tools.server_process import eventually, start_server

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl

LEASE = "replicant-leader"
RELEASE = "replicant"

# (verb, resource[/subresource] or resource/name for Leases): exactly the verbs the process uses.
ALLOWED = [
    ("list", "deployments.apps"),
    ("watch", "deployments.apps"),
    ("update", "deployments.apps/scale"),
    *[(verb, "replicatargets.replicant.dev") for verb in
      ("get", "list", "watch", "create", "patch")],
    ("patch", "replicatargets.replicant.dev/status"),
    ("list", "horizontalpodautoscalers.autoscaling"),
    ("watch", "horizontalpodautoscalers.autoscaling"),
    ("create", "events"),
    ("create", "leases.coordination.k8s.io"),
    ("get", f"leases.coordination.k8s.io/{LEASE}"),
    ("update", f"leases.coordination.k8s.io/{LEASE}"),
]  # fmt: skip

DENIED = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("list", "pods"),
    ("list", "configmaps"),
    ("get", "deployments.apps"),
    ("create", "deployments.apps"),
    ("update", "deployments.apps"),
    ("delete", "deployments.apps"),
    ("delete", "replicatargets.replicant.dev"),
    ("update", "replicatargets.replicant.dev"),
    ("update", "replicatargets.replicant.dev/status"),
    ("patch", "deployments.apps/scale"),
    ("patch", "events"),
    ("delete", "horizontalpodautoscalers.autoscaling"),
    ("get", "leases.coordination.k8s.io/other-lease"),
    ("update", "leases.coordination.k8s.io/other-lease"),
    ("list", "leases.coordination.k8s.io"),
    ("delete", f"leases.coordination.k8s.io/{LEASE}"),
    ("create", "events.events.k8s.io"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
]


def _split_subresource(resource: str) -> list[str]:
    """`can-i` arguments: deployments.apps/scale -> --subresource; leases.x/name stays."""
    base, _, rest = resource.partition("/")
    if rest in ("scale", "status"):
        return [base, f"--subresource={rest}"]
    return [resource]


def can_i(kubectl: Kubectl, release: helmtool.Release, verb: str, resource: str,
          namespace: str | None = None) -> bool:  # fmt: skip
    result = kubectl(
        "auth", "can-i", verb, *_split_subresource(resource),
        f"--as={release.service_account}", "-n", namespace or release.namespace,
        check=False,
    )  # fmt: skip
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {verb} {resource}: {result.stdout}{result.stderr}"
    return answer == "yes"


@pytest.fixture(scope="module")
def crd(kubectl: Kubectl) -> None:
    """The chart's CRD, applied the way `make run` does (Helm never upgrades it)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(helmtool.CRD_FILE))
    kubectl("wait", "--for=condition=Established", "crd/replicatargets.replicant.dev")


def install_release(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, workdir: Path,
    values: dict[str, object] | None = None,
) -> tuple[helmtool.Release, str]:  # fmt: skip
    """Restricted-PSS namespace + TLS Secret + `helm install --wait`; returns the output."""
    require_tools("helm")
    kubectl("label", "--overwrite", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")  # fmt: skip
    for secret in helmtool.tls_secret_manifests(RELEASE, namespace, pki):
        kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    release = helmtool.Release(RELEASE, namespace, kube_cluster.kubeconfig)
    values = {**helmtool.api_server_values(kube_cluster.kubeconfig), **(values or {})}
    output = release.install(values, workdir).stdout
    return release, output


@pytest.fixture
def release(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, crd: None,
    tmp_path: Path,
) -> Iterator[helmtool.Release]:  # fmt: skip
    installed, _ = install_release(kube_cluster, kubectl, namespace, pki, tmp_path)
    try:
        yield installed
    finally:
        installed.helm("uninstall", installed.name, "--wait", check=False)


def test_service_account_may_do_exactly_what_the_contract_lists(
    kubectl: Kubectl, release: helmtool.Release
) -> None:
    answers = {(verb, resource): can_i(kubectl, release, verb, resource)
               for verb, resource in ALLOWED + DENIED}  # fmt: skip

    wrongly_denied = [rule for rule in ALLOWED if not answers[rule]]
    wrongly_allowed = [rule for rule in DENIED if answers[rule]]
    assert (wrongly_denied, wrongly_allowed) == ([], [])


def test_namespace_scoped_install_cannot_touch_other_namespaces(
    kubectl: Kubectl, release: helmtool.Release
) -> None:
    elsewhere = [
        ("list", "deployments.apps"),
        ("update", "deployments.apps/scale"),
        ("list", "replicatargets.replicant.dev"),
        ("create", "events"),
        ("get", f"leases.coordination.k8s.io/{LEASE}"),
    ]

    allowed = [rule for rule in elsewhere if can_i(kubectl, release, *rule, namespace="default")]

    assert allowed == []


def test_restricted_namespace_admits_the_pods_and_rejects_a_baseline_one(
    kubectl: Kubectl, release: helmtool.Release
) -> None:
    deployment = get_json(kubectl, "deployment", release.name, "-n", release.namespace)
    # Fine under `baseline`, not under `restricted` (root allowed, capabilities kept):
    # proves the namespace really enforces the profile the chart's pods passed.
    baseline_only = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "baseline-only", "namespace": release.namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }

    rejected = kubectl("apply", "-f", "-", stdin=json.dumps(baseline_only), check=False)

    assert deployment["status"].get("readyReplicas") == 2
    assert rejected.returncode != 0
    assert "violates PodSecurity" in rejected.stderr


def test_installed_pods_trust_the_separate_client_ca_secret(
    kubectl: Kubectl, release: helmtool.Release
) -> None:
    deployment = get_json(kubectl, "deployment", release.name, "-n", release.namespace)
    spec = deployment["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}

    assert volumes["client-ca"]["secret"]["secretName"] == f"{RELEASE}-client-ca"
    assert [item["key"] for item in volumes["tls"]["secret"]["items"]] == ["tls.crt", "tls.key"]
    mounts = {mount["name"]: mount["mountPath"] for mount in spec["containers"][0]["volumeMounts"]}
    assert mounts["client-ca"] == "/etc/replicant/client-ca"  # the server's --client-ca-file
    assert deployment["status"].get("readyReplicas") == 2


def test_install_notes_warn_and_show_the_next_command(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, crd: None,
    tmp_path: Path,
) -> None:  # fmt: skip
    installed, output = install_release(kube_cluster, kubectl, namespace, pki, tmp_path)
    try:
        assert "authorization.readers and authorization.writers are empty" in output
        assert "A renewed certificate reaches the running pods by itself" in output
        assert f"trusted only from the CA in Secret {RELEASE}-client-ca" in output
        assert f"rollout status deployment/{RELEASE}" in output
        assert "grpcurl" in output
        assert "grpc.health.v1.Health/Check" in output
    finally:
        installed.helm("uninstall", installed.name, "--wait", check=False)


def test_watching_all_namespaces_grants_cluster_wide_reads_only(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, crd: None,
    tmp_path: Path,
) -> None:  # fmt: skip
    installed, _ = install_release(
        kube_cluster, kubectl, namespace, pki, tmp_path, {"watch": {"allNamespaces": True}}
    )
    try:
        assert can_i(kubectl, installed, "list", "deployments.apps", namespace="default")
        assert can_i(kubectl, installed, "update", "deployments.apps/scale", namespace="default")
        assert not can_i(kubectl, installed, "get", "secrets", namespace="default")
        assert not can_i(kubectl, installed, "delete", "deployments.apps", namespace="default")
        assert not can_i(kubectl, installed, "get", f"leases.coordination.k8s.io/{LEASE}",
                         namespace="default")  # fmt: skip
    finally:
        # The ClusterRole outlives the namespace: remove the release explicitly.
        installed.helm("uninstall", installed.name, "--wait", check=False)


POLICY_REFUSAL = "may create a ReplicaTarget or change its spec or replicant.dev/requested-*"


def test_only_replicant_may_write_a_replicatarget_spec_others_may_read_label_and_delete(
    kubectl: Kubectl, release: helmtool.Release
) -> None:
    """The confused deputy: RBAC on replicatargets must not be a way to scale past the grants."""
    namespace = release.namespace
    kubectl("create", "role", "rt-editor", "--verb=*",
            "--resource=replicatargets.replicant.dev", "-n", namespace)  # fmt: skip
    kubectl("create", "rolebinding", "rt-editor", "--role=rt-editor", "--user=mallory",
            "-n", namespace)  # fmt: skip
    manifest = json.dumps(replica_target(namespace, "web", 3))

    def as_user(user: str, *args: str) -> subprocess.CompletedProcess[str]:
        return kubectl(*args, f"--as={user}", "-n", namespace, check=False, stdin=manifest)

    def refused(result: subprocess.CompletedProcess[str]) -> bool:
        return result.returncode != 0 and POLICY_REFUSAL in result.stderr

    mallory, replicant = "mallory", release.service_account
    # The API server loads a new policy within a second or so; a dry run changes nothing.
    eventually("the policy in force", lambda: refused(
        as_user(mallory, "create", "--dry-run=server", "-f", "-")))  # fmt: skip

    created_by_mallory = as_user(mallory, "create", "-f", "-")
    created_by_replicant = as_user(replicant, "create", "-f", "-")
    rt = ("replicatarget", "web")
    spec = as_user(mallory, "patch", *rt, "--type=merge", "-p", '{"spec":{"replicas":9}}')
    requested_by = as_user(mallory, "annotate", "--overwrite", *rt,
                           "replicant.dev/requested-by=spiffe://example.org/admin")  # fmt: skip
    read = as_user(mallory, "get", *rt)
    labelled = as_user(mallory, "label", *rt, "team=a")
    respecced = as_user(replicant, "patch", *rt, "--type=merge", "-p", '{"spec":{"replicas":4}}')
    deleted = as_user(mallory, "delete", *rt)

    assert refused(created_by_mallory)
    assert created_by_replicant.returncode == 0, created_by_replicant.stderr
    assert refused(spec)
    assert refused(requested_by)
    assert [r.returncode for r in (read, labelled, respecced, deleted)] == [0, 0, 0, 0]


def service_account_kubeconfig(kubectl: Kubectl, release: helmtool.Release, out: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount (a bound token)."""
    token = kubectl("create", "token", release.name, "-n", release.namespace,
                    "--duration=1h").stdout.strip()  # fmt: skip
    raw = kubectl("config", "view", "--raw", "--minify", "-o", "json")
    config = json.loads(raw.stdout)
    config["users"] = [{"name": "replicant-sa", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "replicant-sa"
    # JSON is valid YAML: kubeconfig readers accept it as is.
    out.write_text(json.dumps(config))
    out.chmod(0o600)
    return out


@pytest.fixture
def release_without_pods(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, crd: None,
    tmp_path: Path,
) -> Iterator[helmtool.Release]:  # fmt: skip
    """The chart with replicaCount 0: where pods really run (kind), its own servers would
    take the Lease before the test's server could."""
    installed, _ = install_release(kube_cluster, kubectl, namespace, pki, tmp_path,
                                   {"replicaCount": 0})  # fmt: skip
    try:
        yield installed
    finally:
        installed.helm("uninstall", installed.name, "--wait", check=False)


def test_server_runs_and_reconciles_with_only_the_chart_rbac(
    kubectl: Kubectl, release_without_pods: helmtool.Release, pki: Path, tmp_path: Path
) -> None:
    """The real server, authenticated as the chart's ServiceAccount: caches sync, the Lease
    is taken, and a SetReplicas is reconciled into the Deployment's scale, with no 403."""
    release = release_without_pods
    namespace = release.namespace
    kubectl("create", "deployment", "web", "--image=registry.example/web:1", "-n", namespace)
    kubeconfig = service_account_kubeconfig(kubectl, release, tmp_path / "sa.kubeconfig")
    server = start_server(
        kubeconfig, pki, tmp_path / "server.log", namespaces=[namespace],
        extra_args=["--leader-election-namespace", namespace],
    )  # fmt: skip
    try:
        eventually("server /readyz", lambda: server.http("/readyz")[0] == 200)
        eventually("the Lease held by this server", lambda: kubectl(
            "get", "lease", LEASE, "-n", namespace, "-o", "jsonpath={.spec.holderIdentity}",
            check=False).stdout == identity(server))  # fmt: skip
        with server.channel("writer") as channel:
            server.stub(channel).SetReplicas(
                replicant_pb2.SetReplicasRequest(
                    ref=replicant_pb2.DeploymentRef(namespace=namespace, name="web"), replicas=3
                ),
                timeout=10,
            )
        eventually("the Deployment scaled to 3", lambda: kubectl(
            "get", "deployment", "web", "-n", namespace, "-o", "jsonpath={.spec.replicas}",
        ).stdout == "3")  # fmt: skip
    finally:
        exit_code = server.terminate()
    records = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    assert exit_code == 0
    # A 403 shows up as a warning (cache retries) or an error (writes); a clean run has neither.
    assert [r for r in records if r["level"] in ("warning", "error")] == []
    assert not any("denied access" in json.dumps(r) for r in records)


def server_side_render(release: helmtool.Release, workdir: Path,
                       values: dict[str, Any]) -> list[helmtool.Manifest]:  # fmt: skip
    """What `helm install`/`upgrade` would apply now: `lookup` sees the cluster."""
    text = release.helm(
        "template", release.name, str(helmtool.CHART_DIR), "--dry-run=server",
        "--kube-version", helmtool.kubernetes_version(),
        *helmtool.values_args(values, (), workdir),
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_renewed_tls_secret_does_not_change_what_helm_renders(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, tmp_path: Path
) -> None:
    """A renewal reaches the pods by hot reload; an upgrade after it must not roll them."""
    require_tools("helm")
    release = helmtool.Release(RELEASE, namespace, kube_cluster.kubeconfig)
    values = helmtool.api_server_values(kube_cluster.kubeconfig)
    renewed = tmp_path / "renewed"
    devcerts.generate(renewed, (namespace,))
    original_secret = helmtool.tls_secret_manifests(RELEASE, namespace, pki)[0]
    renewed_secret = helmtool.tls_secret_manifests(RELEASE, namespace, renewed)[0]
    assert original_secret["data"] != renewed_secret["data"]

    kubectl("apply", "-f", "-", stdin=json.dumps(original_secret))
    before = server_side_render(release, tmp_path, values)
    kubectl("apply", "-f", "-", stdin=json.dumps(renewed_secret))
    after = server_side_render(release, tmp_path, values)

    assert after == before
    pod_template = helmtool.one(after, "Deployment")["spec"]["template"]
    assert "annotations" not in pod_template["metadata"]  # no checksum of anything TLS

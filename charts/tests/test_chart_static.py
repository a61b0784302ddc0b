"""The chart rendered offline: schema, kubeconform, security defaults, RBAC shape, rollout.

No cluster needed: `helm lint`, `helm template` and kubeconform with schemas generated
from the pinned Kubernetes OpenAPI documents (charts/kubeconform_schemas.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from charts import helmtool, kubeconform_schemas
from charts.helmtool import ALL_OPTIONS_VALUES, CRD_FILE, OFFLINE_VALUES, find, one, render
from tools.ci import require_tools, skip_or_fail
from tools.cluster.paths import REPO_ROOT, bin_dir

if TYPE_CHECKING:
    from charts.helmtool import Manifest

VALUES_CASES = {"default": (OFFLINE_VALUES,), "all-options": (ALL_OPTIONS_VALUES,)}
SCHEMA_PATH = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
SUBPROCESS_TIMEOUT_S = 120.0

# The pinned helm and kubeconform: `make test`, not `make test-unit`.
pytestmark = pytest.mark.tools


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    require_tools("helm")


def openapi_dir() -> Path | None:
    """OpenAPI v3 documents of the pinned Kubernetes, from the Go module cache."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        return None
    cache = subprocess.run(
        [go, "env", "GOMODCACHE"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    found = Path(cache) / f"k8s.io/kubernetes@{helmtool.kubernetes_version()}/api/openapi-spec/v3"
    return found if found.is_dir() else None


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = openapi_dir()
    if source is None:
        skip_or_fail("k8s.io/kubernetes OpenAPI documents not in the Go module cache (make tools)")
    out = tmp_path_factory.mktemp("schemas")
    args = ["--openapi-dir", str(source), "--crd", str(CRD_FILE), "--out", str(out)]
    assert kubeconform_schemas.main(args) == 0
    return out


def pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = one(manifests, "Deployment")["spec"]["template"]["spec"]
    return spec


def server_args(manifests: list[Manifest]) -> dict[str, str]:
    """The server container's `--flag=value` args, as {flag: value}."""
    pairs = (arg.split("=", 1) for arg in pod_spec(manifests)["containers"][0]["args"])
    return {flag: value for flag, value in pairs}


@pytest.mark.parametrize("files", VALUES_CASES.values(), ids=VALUES_CASES.keys())
def test_helm_lint_is_clean(files: tuple[Path, ...]) -> None:
    args = [a for path in files for a in ("--values", str(path))]
    result = helmtool.run_helm(
        "lint", "--strict", str(helmtool.CHART_DIR),
        "--kube-version", helmtool.kubernetes_version(), *args,
    )  # fmt: skip

    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("files", VALUES_CASES.values(), ids=VALUES_CASES.keys())
def test_rendered_manifests_pass_kubeconform_strict(
    files: tuple[Path, ...], schema_dir: Path
) -> None:
    require_tools("kubeconform")
    kubeconform = bin_dir() / "kubeconform"
    text = helmtool.template_text(None, files).stdout

    result = subprocess.run(
        [
            str(kubeconform), "-strict", "-summary",
            "-schema-location", f"{schema_dir}/{SCHEMA_PATH}",
            "-schema-location", f"{REPO_ROOT}/charts/schemas/{SCHEMA_PATH}",
            "-",
        ],
        input=text, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCont": 3}, "additional properties 'replicaCont' not allowed"),
        ({"server": {"logLevl": "info"}}, "additional properties 'logLevl' not allowed"),
        ({"replicaCount": "two"}, "replicaCount"),
        ({"server": {"preStopSleepSeconds": -1}}, "preStopSleepSeconds"),
        ({"watch": {"namespaces": ["Not_A_Label"]}}, "namespaces"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"authorization": {"readers": ["a,b"]}}, "readers"),
        ({"authorization": {"writers": [{"identity": "a", "namespaces": ["Bad"]}]}}, "writers"),
        ({"probes": {"startup": {"periodSeconds": 1}}}, "additional properties 'probes'"),
        ({"metrics": {"podMonitor": {"interval": "soon"}}}, "interval"),
    ],
    ids=[
        "unknown-root-key",
        "unknown-nested-key",
        "wrong-type",
        "bad-enum",
        "bad-ns",
        "digest",
        "two-identities-in-one",
        "bad-grant-namespace",
        "removed-knob",
        "bad-scrape-interval",
    ],
)
def test_schema_rejects_wrong_values_with_the_offending_key(
    values: dict[str, Any], message: str
) -> None:
    result = helmtool.template_text(values, check=False)

    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tls": {"certManager": {"enabled": True}}}, "set tls.certManager.issuerRef.name"),
        (
            {"watch": {"allNamespaces": True, "namespaces": ["a"]}},
            "watch.allNamespaces is true and watch.namespaces is set",
        ),
        (
            {"tls": {"certManager": {"enabled": True, "issuerRef": {"name": "ca"}}}},
            "set tls.certManager.clientIssuerRef.name",
        ),
        (
            {
                "tls": {
                    "certManager": {
                        "enabled": True,
                        "issuerRef": {"name": "ca"},
                        "clientIssuerRef": {"name": "ca"},
                    }
                }
            },
            "clientIssuerRef must differ from issuerRef",
        ),
        (
            {"tls": {"clientCA": {"secretName": "a", "configMapName": "b"}}},
            "set secretName or configMapName, not both",
        ),
        (
            {"authorization": {"writers": [{"identity": "ci", "namespaces": ["elsewhere"]}]}},
            "ci is granted namespace elsewhere, which is not watched (replicant-system)",
        ),
        (
            {
                "watch": {"namespaces": ["team-a"]},
                "authorization": {"readers": [{"identity": "dash", "namespaces": ["team-b"]}]},
            },
            "dash is granted namespace team-b, which is not watched (team-a)",
        ),
    ],
    ids=[
        "issuer-missing",
        "all-and-some-namespaces",
        "client-issuer-missing",
        "client-issuer-is-the-server-issuer",
        "two-client-ca-sources",
        "writer-grant-outside-the-release-namespace",
        "reader-grant-outside-watch-namespaces",
    ],
)
def test_contradictory_values_fail_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    result = helmtool.template_text(values, check=False)

    assert result.returncode != 0
    assert message in result.stderr


def test_default_pod_meets_the_restricted_pod_security_standard() -> None:
    spec = pod_spec(render())
    container = spec["containers"][0]
    pod_context, context = spec["securityContext"], container["securityContext"]

    assert pod_context["runAsNonRoot"] is True
    assert (pod_context["runAsUser"], pod_context["runAsGroup"]) == (65532, 65532)
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert {volume["name"] for volume in spec["volumes"]} == {"tls", "client-ca", "tmp"}
    assert not any("hostPath" in volume for volume in spec["volumes"])


def test_only_the_server_pod_mounts_a_service_account_token() -> None:
    manifests = render()

    assert one(manifests, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod_spec(manifests)["automountServiceAccountToken"] is True
    assert one(manifests, "Pod")["spec"]["automountServiceAccountToken"] is False


def test_rollout_never_drops_below_desired_and_drains_before_exit() -> None:
    deployment = one(render(), "Deployment")
    spec = deployment["spec"]
    container = spec["template"]["spec"]["containers"][0]

    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert spec["minReadySeconds"] > 0
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 5 + 20 + 10
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}


def test_process_configuration_follows_the_contract() -> None:
    manifests = render({"watch": {"namespaces": ["team-a", "team-b"]}}, namespace="ops")
    container = pod_spec(manifests)["containers"][0]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}

    assert server_args(manifests)["--namespaces"] == "team-a,team-b"
    assert server_args(manifests)["--leader-election-namespace"] == "ops"
    # Ports, file paths and the holder identity are the server's defaults (server/config.py).
    assert {port["containerPort"] for port in container["ports"]} == {8443, 8080}
    assert mounts["tls"] == "/etc/replicant/tls"
    assert mounts["client-ca"] == "/etc/replicant/client-ca"
    assert "--identity" not in server_args(manifests)
    assert "env" not in container


def test_default_install_watches_only_the_release_namespace() -> None:
    manifests = render(namespace="ops")

    assert server_args(manifests)["--namespaces"] == "ops"
    assert {role["metadata"]["namespace"] for role in find(manifests, "Role")} == {"ops"}
    assert find(manifests, "ClusterRole") == []
    assert find(manifests, "ClusterRoleBinding") == []


def test_each_watched_namespace_gets_its_own_role_and_binding() -> None:
    manifests = render({"watch": {"namespaces": ["team-a", "team-b"]}})
    workload_roles = find(manifests, "Role", "replicant")

    assert {role["metadata"]["namespace"] for role in workload_roles} == {"team-a", "team-b"}
    bindings = find(manifests, "RoleBinding", "replicant")
    assert {binding["metadata"]["namespace"] for binding in bindings} == {"team-a", "team-b"}
    assert all(binding["subjects"][0]["namespace"] == "replicant-system" for binding in bindings)
    assert find(manifests, "ClusterRole") == []


def test_watching_all_namespaces_uses_a_cluster_role_instead() -> None:
    manifests = render({"watch": {"allNamespaces": True}})

    cluster_role = one(manifests, "ClusterRole")
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert find(manifests, "Role", "replicant") == []
    assert server_args(manifests)["--namespaces"] == ""


def test_lease_access_is_limited_to_the_release_lease_except_create() -> None:
    manifests = render(release="blue")
    role = one(manifests, "Role", "blue-replicant-leader-election")
    rules = role["rules"]

    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["create"]} in rules  # fmt: skip
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "resourceNames": ["replicant-leader"],
            "verbs": ["get", "update"]} in rules  # fmt: skip
    assert len(rules) == 2


def test_no_rule_grants_secrets_pods_delete_or_wildcards() -> None:
    manifests = render({"watch": {"allNamespaces": True}})
    rules = [
        rule for doc in manifests if doc["kind"] in ("Role", "ClusterRole") for rule in doc["rules"]
    ]

    assert rules
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not {"delete", "deletecollection"} & set(rule["verbs"])
        assert not {"secrets", "pods", "configmaps"} & set(rule["resources"])


def test_config_changes_roll_the_pods_and_certificates_are_not_in_the_pod_template() -> None:
    def template(values: dict[str, Any]) -> dict[str, Any]:
        pod_template: dict[str, Any] = one(render(values), "Deployment")["spec"]["template"]
        return pod_template

    base = template({})
    rewatched = template({"watch": {"namespaces": ["team-a"]}})

    assert rewatched["spec"]["containers"][0]["args"] != base["spec"]["containers"][0]["args"]
    # Renewed certificates reach the pods by hot reload (server/tls.py), never a rollout.
    assert "annotations" not in base["metadata"]
    assert "lookup" not in (helmtool.CHART_DIR / "templates" / "deployment.yaml").read_text()


def test_grants_render_as_one_entry_per_identity_and_namespace() -> None:
    config = server_args(render(None, (ALL_OPTIONS_VALUES,)))

    assert config["--readers"] == (
        "spiffe://example.org/ns/monitoring/sa/dashboard,"
        "spiffe://example.org/ns/team-a/sa/dashboard=team-a,"
        "spiffe://example.org/ns/team-a/sa/dashboard=team-b"
    )
    assert config["--writers"] == "spiffe://example.org/ns/ci/sa/deployer=team-a"


@pytest.mark.parametrize(
    ("values", "files", "source"),
    [
        (None, (OFFLINE_VALUES,), {"secret": {"secretName": "replicant-client-ca"}}),
        (
            {"tls": {"clientCA": {"secretName": "callers"}}},
            (OFFLINE_VALUES,),
            {"secret": {"secretName": "callers"}},
        ),
        (None, (ALL_OPTIONS_VALUES,), {"configMap": {"name": "replicant-all-client-ca"}}),
    ],
    ids=["default-secret", "named-secret", "cert-manager-mode-configmap"],
)
def test_client_ca_is_its_own_volume_never_the_server_secret(
    values: dict[str, Any] | None, files: tuple[Path, ...], source: dict[str, Any]
) -> None:
    manifests = render(values, files)
    spec = pod_spec(manifests)
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    key = "bundle.pem" if ALL_OPTIONS_VALUES in files else "ca.crt"

    client_ca = volumes["client-ca"]
    kind = next(iter(source))
    assert {k: v for k, v in client_ca[kind].items() if k in source[kind]} == source[kind]
    assert client_ca[kind]["items"] == [{"key": key, "path": "ca.crt"}]
    assert [item["key"] for item in volumes["tls"]["secret"]["items"]] == ["tls.crt", "tls.key"]
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["client-ca"] == "/etc/replicant/client-ca"


def test_no_private_key_material_is_ever_rendered() -> None:
    for files in VALUES_CASES.values():
        text = helmtool.template_text(None, files).stdout

        assert "PRIVATE KEY" not in text
        assert "tls.key:" not in text


def test_cert_manager_mode_issues_server_and_test_client_certificates() -> None:
    manifests = render(None, (ALL_OPTIONS_VALUES,))
    server = one(manifests, "Certificate", "replicant")
    client = one(manifests, "Certificate", "replicant-test-client")

    assert server["spec"]["secretName"] == "replicant-all-tls"
    assert "replicant.replicant-system.svc" in server["spec"]["dnsNames"]
    assert server["spec"]["privateKey"] == {"algorithm": "ECDSA", "size": 256,
                                            "rotationPolicy": "Always"}  # fmt: skip
    assert server["spec"]["issuerRef"] == {
        "name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io",
    }  # fmt: skip
    # ECDSA: no "key encipherment", an RSA key-exchange usage.
    assert server["spec"]["usages"] == ["digital signature", "server auth"]
    assert client["spec"]["usages"] == ["digital signature", "client auth"]
    assert client["spec"]["issuerRef"]["name"] == "internal-client-ca"  # never the server's
    assert client["spec"]["dnsNames"] == ["replicant-test-client"]  # an identity in no grant
    test_pod = one(manifests, "Pod")
    volumes = {v["name"]: v["secret"] for v in test_pod["spec"]["volumes"]}
    assert volumes["client"]["secretName"] == "replicant-test-client"
    assert volumes["server-ca"] == {
        "secretName": "replicant-all-tls", "defaultMode": 0o440,
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }  # fmt: skip


def test_network_policy_egress_is_only_the_api_server_cidrs() -> None:
    policy = one(render(None, (ALL_OPTIONS_VALUES,)), "NetworkPolicy")
    egress = policy["spec"]["egress"]

    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert egress == [{
        "ports": [{"port": 6443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}, {"ipBlock": {"cidr": "fd00::2/128"}}],
    }]  # fmt: skip
    grpc_from = policy["spec"]["ingress"][0]["from"]
    assert grpc_from[-1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"


def test_helm_test_pod_checks_health_over_mtls_through_the_service() -> None:
    pod = one(render(), "Pod")
    container = pod["spec"]["containers"][0]

    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert container["command"] == ["/app/server/server", "healthcheck"]
    assert "--address=replicant.replicant-system.svc:8443" in container["args"]
    assert "--cert-file=/etc/replicant/client/tls.crt" in container["args"]
    assert "--ca-file=/etc/replicant/server-ca/ca.crt" in container["args"]
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "replicant-test-client"


def test_default_network_policy_egress_is_never_open_to_every_address() -> None:
    """Offline there is no cluster to read the API server endpoints from: the defaults
    refuse to render rather than allow egress to any address."""
    result = helmtool.template_text(None, (), check=False)

    assert result.returncode != 0
    assert "set networkPolicy.egress.apiServer.cidrs" in result.stderr
    assert find(render({"networkPolicy": {"enabled": False}}, ()), "Deployment")


def test_every_egress_rule_names_its_destinations() -> None:
    for files in VALUES_CASES.values():
        policy = one(render(None, files), "NetworkPolicy")

        assert all(rule.get("to") for rule in policy["spec"]["egress"])


def test_api_service_exposes_only_the_grpc_port() -> None:
    for files in VALUES_CASES.values():
        service = one(render(None, files), "Service", "replicant")

        assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
            ("grpc", 8443, "grpc")
        ]


@pytest.mark.parametrize(
    ("values", "kinds"),
    [
        ({}, set()),
        ({"metrics": {"service": {"enabled": True}}}, {"Service"}),
        ({"metrics": {"podMonitor": {"enabled": True}}}, {"PodMonitor"}),
    ],
    ids=["default-off", "metrics-service", "pod-monitor"],
)
def test_metrics_are_reachable_only_the_way_asked(values: dict[str, Any], kinds: set[str]) -> None:
    manifests = render(values)
    api_selector = one(manifests, "Service", "replicant")["spec"]["selector"]
    metrics = [
        doc for doc in manifests
        if doc["kind"] == "PodMonitor" or doc["metadata"]["name"] == "replicant-metrics"
    ]  # fmt: skip

    assert {doc["kind"] for doc in metrics} == kinds
    for doc in metrics:
        if doc["kind"] == "Service":
            assert [p["targetPort"] for p in doc["spec"]["ports"]] == ["http"]
            assert doc["spec"]["selector"] == api_selector
        else:
            assert doc["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics"}]


@pytest.mark.parametrize(
    ("values", "files", "namespaces"),
    [
        (None, (OFFLINE_VALUES,), ["replicant-system"]),
        ({"watch": {"namespaces": ["team-a", "team-b"]}}, (OFFLINE_VALUES,), ["team-a", "team-b"]),
        (None, (ALL_OPTIONS_VALUES,), None),
    ],
    ids=["release-namespace", "listed-namespaces", "all-namespaces"],
)
def test_only_the_service_account_may_write_replicatarget_specs_in_watched_namespaces(
    values: dict[str, Any] | None, files: tuple[Path, ...], namespaces: list[str] | None
) -> None:
    manifests = render(values, files)
    policy = one(manifests, "ValidatingAdmissionPolicy")
    binding = one(manifests, "ValidatingAdmissionPolicyBinding")

    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["resources"], rule["operations"]) == (["replicatargets"], ["CREATE", "UPDATE"])
    assert policy["spec"]["failurePolicy"] == "Fail"
    account = one(manifests, "ServiceAccount")["metadata"]
    username = f"system:serviceaccount:{account['namespace']}:{account['name']}"
    assert (
        f'request.userInfo.username == "{username}"' in policy["spec"]["variables"][0]["expression"]
    )
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    selector = binding["spec"].get("matchResources", {}).get("namespaceSelector")
    if namespaces is None:
        assert selector is None  # every namespace
    else:
        (expression,) = selector["matchExpressions"]
        assert expression["values"] == namespaces


def test_crd_template_is_the_crd_file_and_survives_uninstall() -> None:
    source = yaml.safe_load(CRD_FILE.read_text())
    rendered = one(render(), "CustomResourceDefinition")

    assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert rendered["spec"] == source["spec"]
    assert find(render({"crds": {"enabled": False}}), "CustomResourceDefinition") == []

"""API-server behaviour replicant relies on: CEL validation of CRDs, policy/v1
PodDisruptionBudgets, and /metrics readable with the admin kubeconfig."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from e2e.cluster_fixtures import Kubectl

GROUP = f"e2e-{secrets.token_hex(3)}.replicant.dev"
PLURAL = "scalers"


def crd_with_cel_rule() -> str:
    spec_schema = {
        "type": "object",
        "properties": {
            "minReplicas": {"type": "integer"},
            "maxReplicas": {"type": "integer"},
        },
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.maxReplicas", "message": "min must not exceed max"}
        ],
    }
    return json.dumps(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{PLURAL}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"plural": PLURAL, "singular": "scaler", "kind": "Scaler"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {"spec": spec_schema},
                            }
                        },
                    }
                ],
            },
        }
    )


def scaler(name: str, min_replicas: int, max_replicas: int) -> str:
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Scaler",
            "metadata": {"name": name},
            "spec": {"minReplicas": min_replicas, "maxReplicas": max_replicas},
        }
    )


@pytest.fixture(scope="module")
def cel_crd(kubectl: Kubectl) -> Iterator[str]:
    """The CRD, established; deleted after the module (it is cluster-scoped)."""
    name = f"{PLURAL}.{GROUP}"
    kubectl("apply", "-f", "-", stdin=crd_with_cel_rule())
    try:
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        yield name
    finally:
        kubectl("delete", "crd", name, "--wait=false", "--ignore-not-found")


def test_crd_cel_rule_accepts_a_valid_object(
    kubectl: Kubectl, namespace: str, cel_crd: str
) -> None:
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=scaler("ok", 1, 3), check=False)

    assert result.returncode == 0, result.stderr


def test_crd_cel_rule_rejects_an_invalid_object(
    kubectl: Kubectl, namespace: str, cel_crd: str
) -> None:
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=scaler("bad", 5, 3), check=False)

    assert result.returncode != 0
    assert "min must not exceed max" in result.stderr


def test_policy_v1_pod_disruption_budget_is_served(kubectl: Kubectl, namespace: str) -> None:
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "app"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "app"}}},
    }

    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pdb))

    served = kubectl("get", "poddisruptionbudgets.v1.policy", "app", "-n", namespace, "-o", "name")
    assert served.stdout.strip() == "poddisruptionbudget.policy/app"


def test_admin_can_read_apiserver_request_metrics(kubectl: Kubectl) -> None:
    metrics = kubectl("get", "--raw", "/metrics").stdout

    assert "apiserver_request_total{" in metrics

"""The CRD's validation runs in the API server: raw API requests, no Python in the way."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from e2e.reconciler_support import replica_target

if TYPE_CHECKING:
    from e2e.cluster_fixtures import Kubectl


def create_raw(kubectl: Kubectl, namespace: str, body: dict[str, object]) -> tuple[int, str]:
    """POST the object with `kubectl create --raw`: the API server is the only validator."""
    path = f"/apis/replicant.dev/v1alpha1/namespaces/{namespace}/replicatargets"
    result = kubectl("create", "--raw", path, "-f", "-", stdin=json.dumps(body), check=False)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("case", "name", "deployment_name", "replicas", "error"),
    [
        ("too many", "web", "web", 1001, "spec.replicas"),
        ("negative", "web", "web", -1, "spec.replicas"),
        ("other deployment", "web", "api", 1, "metadata.name must equal spec.deploymentName"),
    ],
)
def test_api_server_rejects_an_invalid_target(
    kubectl: Kubectl,
    namespace: str,
    case: str,
    name: str,
    deployment_name: str,
    replicas: int,
    error: str,
) -> None:
    body = replica_target(namespace, name, replicas)
    body["spec"] = {"deploymentName": deployment_name, "replicas": replicas}

    code, stderr = create_raw(kubectl, namespace, body)

    assert code != 0, case
    assert "Invalid" in stderr or "invalid" in stderr
    assert error in stderr


@pytest.mark.parametrize("replicas", [0, 1000])
def test_api_server_accepts_the_bounds(kubectl: Kubectl, namespace: str, replicas: int) -> None:
    code, stderr = create_raw(kubectl, namespace, replica_target(namespace, "web", replicas))

    assert code == 0, stderr


def test_deployment_name_is_immutable(kubectl: Kubectl, namespace: str) -> None:
    code, stderr = create_raw(kubectl, namespace, replica_target(namespace, "web", 1))
    assert code == 0, stderr

    result = kubectl(
        "patch", "rt", "web", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"deploymentName": "api"}}), check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert "spec.deploymentName is immutable" in result.stderr


def test_kubectl_get_shows_the_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    code, stderr = create_raw(kubectl, namespace, replica_target(namespace, "web", 2))
    assert code == 0, stderr

    header = kubectl("get", "rt", "-n", namespace).stdout.splitlines()[0].split()

    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "STATUS", "AGE"]

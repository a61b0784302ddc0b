"""Deployments on the local control plane: the controllers, scheduler and kwok
together take a Deployment to N ready (fake) pods, and follow scaling. On kind the pods
really run, from the pause image the node already has."""

from __future__ import annotations

import json

import pytest

from e2e.cluster_fixtures import Kubectl, get_json
from tools.server_process import eventually

ROLLOUT_TIMEOUT_S = 90.0


def node_image(kubectl: Kubectl) -> str:
    """The pause image a node reports having (kind: pods start without a pull); kwok
    nodes report none and never pull, so any name does there."""
    for node in get_json(kubectl, "nodes")["items"]:
        for image in node.get("status", {}).get("images") or []:
            for name in image.get("names") or []:
                if "/pause:" in name:
                    return str(name)
    return "example.invalid/app:1"


def deployment_manifest(kubectl: Kubectl, name: str, replicas: int) -> str:
    labels = {"app": name}
    image = node_image(kubectl)
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": image}]},
                },
            },
        }
    )


def ready_replicas(kubectl: Kubectl, namespace: str, name: str) -> int:
    status = get_json(kubectl, "deployment", name, "-n", namespace).get("status", {})
    return int(status.get("readyReplicas", 0))


def wait_ready_replicas(kubectl: Kubectl, namespace: str, name: str, want: int) -> None:
    eventually(
        f"deployment/{name} readyReplicas == {want}",
        lambda: ready_replicas(kubectl, namespace, name) == want,
        ROLLOUT_TIMEOUT_S,
    )


@pytest.fixture
def deployment(kubectl: Kubectl, namespace: str) -> str:
    """A Deployment `app` with 3 replicas, already rolled out."""
    kubectl("apply", "-n", namespace, "-f", "-", stdin=deployment_manifest(kubectl, "app", 3))
    wait_ready_replicas(kubectl, namespace, "app", 3)
    return "app"


def test_deployment_with_three_replicas_reaches_three_ready(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=deployment_manifest(kubectl, "web", 3))

    wait_ready_replicas(kubectl, namespace, "web", 3)

    assert ready_replicas(kubectl, namespace, "web") == 3


def test_scaling_to_five_is_reflected_in_status(
    kubectl: Kubectl, namespace: str, deployment: str
) -> None:
    kubectl("scale", f"deployment/{deployment}", "--replicas=5", "-n", namespace)

    wait_ready_replicas(kubectl, namespace, deployment, 5)

    status = get_json(kubectl, "deployment", deployment, "-n", namespace)["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (5, 5, 5)


def test_scaling_to_zero_removes_every_pod(
    kubectl: Kubectl, namespace: str, deployment: str
) -> None:
    kubectl("scale", f"deployment/{deployment}", "--replicas=0", "-n", namespace)

    def no_pods_left() -> bool:
        return not get_json(kubectl, "pods", "-n", namespace, "-l", "app=app")["items"]

    eventually("every pod of deployment/app deleted", no_pods_left, ROLLOUT_TIMEOUT_S)
    status = get_json(kubectl, "deployment", deployment, "-n", namespace).get("status", {})
    assert status.get("replicas", 0) == 0
    assert status.get("readyReplicas", 0) == 0

"""Concurrent and compare-and-set SetReplicas against the real API server."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import grpc
import pytest

from e2e.reconciler_fixtures import get_object
from e2e.reconciler_support import (
    create_deployment,
    set_replicas,
    start_replicant,
    wait_cached,
    wait_reason,
    wait_spec_replicas,
)
from tools import devcerts

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl
    from e2e.server_process import ServerProcess

WRITERS = 8


@pytest.fixture
def server(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str, pki: Path, tmp_path: Path
) -> Iterator[ServerProcess]:
    proc = start_replicant(kube_cluster, pki, tmp_path / "server.log", namespace)
    try:
        create_deployment(kubectl, namespace, "web", 1)
        wait_cached(proc, namespace, "web")
        yield proc
    finally:
        assert proc.terminate() == 0


def test_concurrent_unconditional_sets_all_succeed_and_the_last_one_wins(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    # Several writers race the first write: creates collide and must fall back to updates.
    with ThreadPoolExecutor(WRITERS) as pool:
        answers = list(
            pool.map(lambda n: set_replicas(server, namespace, "web", n), range(1, WRITERS + 1))
        )

    assert sorted(a.replicas for a in answers) == list(range(1, WRITERS + 1))
    target = get_object(kubectl, "rt", "web", "-n", namespace)
    assert target is not None
    final = target["spec"]["replicas"]
    # The stored state is one of the answers: the one with the newest version.
    newest = max(answers, key=lambda a: int(a.version))
    assert final == newest.replicas
    wait_spec_replicas(kubectl, namespace, "web", final)
    wait_reason(kubectl, namespace, "web", "Converged")


def test_set_with_a_stale_version_is_aborted_and_changes_nothing(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    first = set_replicas(server, namespace, "web", 2)
    second = set_replicas(server, namespace, "web", 3, expected_version=first.version)

    with pytest.raises(grpc.RpcError) as err:
        set_replicas(server, namespace, "web", 4, expected_version=first.version)

    assert err.value.code() == grpc.StatusCode.ABORTED
    assert second.replicas == 3
    target = get_object(kubectl, "rt", "web", "-n", namespace)
    assert target is not None
    assert target["spec"]["replicas"] == 3
    wait_spec_replicas(kubectl, namespace, "web", 3)


def test_concurrent_compare_and_set_lets_exactly_one_writer_win(
    server: ServerProcess, namespace: str
) -> None:
    base = set_replicas(server, namespace, "web", 2)

    def attempt(replicas: int) -> grpc.StatusCode:
        try:
            set_replicas(server, namespace, "web", replicas, expected_version=base.version)
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(attempt, (5, 6)), key=lambda c: c.value[0])

    assert codes == [grpc.StatusCode.OK, grpc.StatusCode.ABORTED]


def test_set_with_a_version_for_a_target_that_does_not_exist_is_aborted(
    server: ServerProcess, namespace: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        set_replicas(server, namespace, "web", 2, expected_version="12345")

    assert err.value.code() == grpc.StatusCode.ABORTED


def test_set_with_a_version_this_api_never_returns_is_aborted_and_changes_nothing(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    set_replicas(server, namespace, "web", 2)

    with pytest.raises(grpc.RpcError) as err:
        set_replicas(server, namespace, "web", 4, expected_version="abc-DEF_1.2")

    assert err.value.code() == grpc.StatusCode.ABORTED
    target = get_object(kubectl, "rt", "web", "-n", namespace)
    assert target is not None
    assert target["spec"]["replicas"] == 2


def test_compare_and_set_works_on_a_target_created_without_annotations(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    # Made by `kubectl create`, not by replicant: no annotations at all (apply would add one).
    kubectl("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "replicant.dev/v1alpha1", "kind": "ReplicaTarget",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"deploymentName": "web", "replicas": 2},
    }))  # fmt: skip

    stored = set_replicas(server, namespace, "web", 3, expected_version="1")

    assert (stored.replicas, stored.requested_by) == (3, devcerts.WRITER_ID)
    wait_spec_replicas(kubectl, namespace, "web", 3)

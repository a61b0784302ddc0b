"""Concurrent and compare-and-set SetReplicas against the real API server: versions name one
ReplicaTarget (uid:generation), so a version survives neither a new spec nor a delete and
re-create; a malformed one is INVALID_ARGUMENT, one with nothing to compare FAILED_PRECONDITION."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

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
    from tools.server_process import ServerProcess

WRITERS = 8
NO_SUCH_UID = "0e7c7a5f-1111-4222-8333-944455556666"


def generation_of(version: str) -> int:
    return int(version.rpartition(":")[2])


def code_of_set(server: ServerProcess, namespace: str, replicas: int, version: str) -> Any:
    try:
        set_replicas(server, namespace, "web", replicas, expected_version=version)
    except grpc.RpcError as err:
        return err.code(), err.details()
    return grpc.StatusCode.OK, ""


def stored_replicas(kubectl: Kubectl, namespace: str) -> int | None:
    target = get_object(kubectl, "rt", "web", "-n", namespace)
    return None if target is None else int(target["spec"]["replicas"])


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
    newest = max(answers, key=lambda a: generation_of(a.version))
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


def test_set_with_a_version_where_no_target_exists_is_a_failed_precondition(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    code, details = code_of_set(server, namespace, 2, f"{NO_SUCH_UID}:1")

    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "without expected_version" in details
    assert stored_replicas(kubectl, namespace) is None


@pytest.mark.parametrize(
    "version", ["garbage", "-1", "99999999999999999999999", " 2", "1", f"{NO_SUCH_UID}:01"]
)
def test_set_with_a_malformed_version_is_invalid_whatever_its_spelling_and_writes_nothing(
    server: ServerProcess, kubectl: Kubectl, namespace: str, version: str
) -> None:
    set_replicas(server, namespace, "web", 2)

    code, details = code_of_set(server, namespace, 4, version)

    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "expected_version is malformed; pass DesiredState.version back unchanged",
    )
    assert stored_replicas(kubectl, namespace) == 2


def test_a_version_of_a_deleted_target_does_not_match_its_re_created_namesake(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    old = set_replicas(server, namespace, "web", 2)
    kubectl("delete", "rt", "web", "-n", namespace, "--wait=true")
    new = set_replicas(server, namespace, "web", 3)
    # The same generation on a new object: a version of generation alone would match (ABA).
    assert generation_of(new.version) == generation_of(old.version)

    code, _ = code_of_set(server, namespace, 4, old.version)

    assert code == grpc.StatusCode.ABORTED
    assert stored_replicas(kubectl, namespace) == 3
    assert code_of_set(server, namespace, 4, new.version)[0] == grpc.StatusCode.OK


def test_compare_and_set_works_on_a_target_created_without_annotations(
    server: ServerProcess, kubectl: Kubectl, namespace: str
) -> None:
    # Made by `kubectl create`, not by replicant: no annotations at all (apply would add one).
    kubectl("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "replicant.dev/v1alpha1", "kind": "ReplicaTarget",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"deploymentName": "web", "replicas": 2},
    }))  # fmt: skip

    created = get_object(kubectl, "rt", "web", "-n", namespace)
    assert created is not None
    version = f"{created['metadata']['uid']}:{created['metadata']['generation']}"

    stored = set_replicas(server, namespace, "web", 3, expected_version=version)

    assert (stored.replicas, stored.requested_by) == (3, devcerts.WRITER_ID)
    wait_spec_replicas(kubectl, namespace, "web", 3)

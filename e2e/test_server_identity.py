"""Identity, grants and page tokens against the real API server, with two server processes.

The annotations a write leaves carry exactly the certificate's name; a crafted certificate with a
NUL in its SAN writes nothing; a reader granted one namespace sees nothing of another; page tokens
continue on another replica of the service but never in another namespace.
"""

from __future__ import annotations

import functools
import shutil
from typing import TYPE_CHECKING

import grpc
import pytest

from e2e.cluster_fixtures import namespace_name
from e2e.reconciler_fixtures import get_object
from replicant.v1 import replicant_pb2 as pb
from server.tests import certs
from tools import devcerts
from tools.server_process import ServerProcess, code_of, eventually, start_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from e2e.cluster_fixtures import KubeCluster, Kubectl

READER, WRITER = devcerts.READER_ID, devcerts.WRITER_ID


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = namespace_name("other")
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def crafted_pki(pki: Path, tmp_path: Path) -> Path:
    out = tmp_path / "pki"
    shutil.copytree(pki, out)
    certs.issue(out, out, "nul-writer", uris=[f"{WRITER}\x00.evil"])
    return out


@pytest.fixture
def replicas(
    kube_cluster: KubeCluster,
    kubectl: Kubectl,
    namespace: str,
    other_namespace: str,
    crafted_pki: Path,
    tmp_path: Path,
) -> Iterator[list[ServerProcess]]:
    """Two replicas of the service; the reader may read `namespace` only."""
    for ns in (namespace, other_namespace):
        for name in ("a", "b", "c"):
            kubectl("create", "deployment", name, "--image=nginx", "-n", ns)
    grants = ["--readers", f"{READER}={namespace}", "--writers", WRITER]
    servers: list[ServerProcess] = []
    try:
        for index in range(2):
            servers.append(
                start_server(
                    kube_cluster.kubeconfig,
                    crafted_pki,
                    tmp_path / f"server-{index}.log",
                    namespaces=[namespace, other_namespace],
                    extra_args=[*grants, "--leader-election-namespace", namespace],
                )
            )
        for server in servers:
            eventually("readyz 200", functools.partial(_ready, server))
        yield servers
    finally:
        for server in servers:
            server.terminate()


def _ready(server: ServerProcess) -> bool:
    return server.http("/readyz")[0] == 200


def set_request(ns: str, name: str) -> pb.SetReplicasRequest:
    return pb.SetReplicasRequest(ref=pb.DeploymentRef(namespace=ns, name=name), replicas=2)


def test_annotations_name_exactly_the_certificate_and_a_nul_san_writes_nothing(
    replicas: list[ServerProcess], kubectl: Kubectl, namespace: str
) -> None:
    server = replicas[0]
    with server.channel("nul-writer") as chan:
        forged = code_of(lambda: server.stub(chan).SetReplicas(set_request(namespace, "b")))
    with server.channel("writer") as chan:
        server.stub(chan).SetReplicas(set_request(namespace, "a"), timeout=20)
    written = get_object(kubectl, "replicatarget", "a", "-n", namespace)
    untouched = get_object(kubectl, "replicatarget", "b", "-n", namespace)
    identities = {e.get("identity") for e in server.logs() if e.get("msg") == "rpc"}
    assert forged == grpc.StatusCode.UNAUTHENTICATED
    assert written is not None
    assert written["metadata"]["annotations"]["replicant.dev/requested-by"] == WRITER
    assert untouched is None
    assert identities == {"", WRITER}


def test_reader_granted_one_namespace_sees_nothing_of_another(
    replicas: list[ServerProcess], namespace: str, other_namespace: str
) -> None:
    server = replicas[0]
    with server.channel("reader") as chan:
        stub = server.stub(chan)
        existing = code_of(
            lambda: stub.GetReplicas(
                pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=other_namespace, name="a"))
            )
        )
        missing = code_of(
            lambda: stub.GetReplicas(
                pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=other_namespace, name="zz"))
            )
        )
        everything = stub.ListDeployments(pb.ListDeploymentsRequest())
        other = stub.ListDeployments(pb.ListDeploymentsRequest(namespace=other_namespace))
    assert existing == missing == grpc.StatusCode.NOT_FOUND
    assert {d.ref.namespace for d in everything.deployments} == {namespace}
    assert list(other.deployments) == []


def test_page_tokens_continue_on_another_replica_but_not_elsewhere(
    replicas: list[ServerProcess], namespace: str, other_namespace: str
) -> None:
    first, second = replicas
    with first.channel("writer") as one, second.channel("writer") as two:
        page = first.stub(one).ListDeployments(
            pb.ListDeploymentsRequest(namespace=namespace, page_size=2)
        )
        rest = second.stub(two).ListDeployments(
            pb.ListDeploymentsRequest(
                namespace=namespace, page_size=2, page_token=page.next_page_token
            )
        )
        moved = code_of(
            lambda: second.stub(two).ListDeployments(
                pb.ListDeploymentsRequest(
                    namespace=other_namespace, page_token=page.next_page_token
                )
            )
        )
        forged = code_of(
            lambda: second.stub(two).ListDeployments(
                pb.ListDeploymentsRequest(page_token=page.next_page_token[:-2] + "AA")
            )
        )
    with second.channel("reader") as reader:
        borrowed = code_of(
            lambda: second.stub(reader).ListDeployments(
                pb.ListDeploymentsRequest(
                    namespace=namespace, page_size=2, page_token=page.next_page_token
                )
            )
        )
    assert [d.ref.name for d in page.deployments] == ["a", "b"]
    assert [d.ref.name for d in rest.deployments] == ["c"]
    assert moved == forged == borrowed == grpc.StatusCode.INVALID_ARGUMENT

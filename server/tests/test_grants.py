"""Roles per namespace over mTLS: outside its grant a caller sees what it would see for nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
import pytest_asyncio

from replicant.v1 import replicant_pb2 as pb
from server.tests.conftest import READER, WRITER, started, stub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from kube.tests.fakes import FakeKube
    from server.tests.conftest import Harness

pytestmark = pytest.mark.asyncio

# The reader may read apps; the writer may read apps and batch, and set in apps only.
READERS = frozenset({f"{READER}=apps", f"{WRITER}=batch"})
WRITERS = frozenset({f"{WRITER}=apps"})


@pytest_asyncio.fixture
async def granted(pki: Path, kube: FakeKube) -> AsyncIterator[Harness]:
    async with started(pki, kube, readers=READERS, writers=WRITERS) as app:
        await app.wait_ready()
        yield app


async def outcome(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


def get(ns: str, name: str) -> pb.GetReplicasRequest:
    return pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=ns, name=name))


def set_(ns: str, name: str) -> pb.SetReplicasRequest:
    return pb.SetReplicasRequest(ref=pb.DeploymentRef(namespace=ns, name=name), replicas=2)


async def test_reader_outside_its_grant_gets_the_answer_for_a_missing_deployment(
    granted: Harness,
) -> None:
    async with granted.channel("reader") as chan:
        inside = await outcome(stub(chan).GetReplicas(get("apps", "api")))
        existing = await outcome(stub(chan).GetReplicas(get("batch", "jobs")))
        missing = await outcome(stub(chan).GetReplicas(get("batch", "nope")))
    assert inside == (grpc.StatusCode.OK, "")
    assert existing == (grpc.StatusCode.NOT_FOUND, "deployment batch/jobs not found")
    assert missing == (grpc.StatusCode.NOT_FOUND, "deployment batch/nope not found")


async def test_reader_lists_only_its_namespaces(granted: Harness) -> None:
    async with granted.channel("reader") as chan:
        everything = await stub(chan).ListDeployments(pb.ListDeploymentsRequest())
        other = await stub(chan).ListDeployments(pb.ListDeploymentsRequest(namespace="batch"))
        empty = await stub(chan).ListDeployments(pb.ListDeploymentsRequest(namespace="nowhere"))
    assert [(d.ref.namespace, d.ref.name) for d in everything.deployments] == [
        ("apps", "api"),
        ("apps", "web"),
    ]
    assert (list(other.deployments), other.next_page_token) == ([], "")
    assert (list(empty.deployments), empty.next_page_token) == ([], "")
    assert other.HasField("as_of")  # stamped like any other answer
    assert empty.HasField("as_of")


async def test_page_tokens_cannot_cross_grants_or_namespaces(granted: Harness) -> None:
    async with granted.channel("writer") as writer, granted.channel("reader") as reader:
        # The writer's listing (apps, batch) stops in apps; its token would lead into batch.
        first = await stub(writer).ListDeployments(pb.ListDeploymentsRequest(page_size=2))
        writer_next = await stub(writer).ListDeployments(
            pb.ListDeploymentsRequest(page_size=2, page_token=first.next_page_token)
        )
        borrowed = await outcome(
            stub(reader).ListDeployments(
                pb.ListDeploymentsRequest(page_size=2, page_token=first.next_page_token)
            )
        )
        own = await stub(reader).ListDeployments(pb.ListDeploymentsRequest(page_size=1))
        other_filter = await outcome(
            stub(reader).ListDeployments(
                pb.ListDeploymentsRequest(namespace="apps", page_token=own.next_page_token)
            )
        )
    assert [d.ref.namespace for d in writer_next.deployments] == ["batch", "batch"]
    assert borrowed[0] == other_filter[0] == grpc.StatusCode.INVALID_ARGUMENT


async def test_writer_cannot_set_outside_its_grant(granted: Harness) -> None:
    async with granted.channel("writer") as chan:
        inside = await outcome(stub(chan).SetReplicas(set_("apps", "api")))
        read_only = await outcome(stub(chan).SetReplicas(set_("batch", "jobs")))
        unseen = await outcome(stub(chan).SetReplicas(set_("tools", "grafana")))
        missing = await outcome(stub(chan).SetReplicas(set_("tools", "nope")))
    assert inside == (grpc.StatusCode.OK, "")
    assert read_only == (
        grpc.StatusCode.PERMISSION_DENIED,
        "caller has no writer role in namespace batch",
    )
    assert unseen == (grpc.StatusCode.NOT_FOUND, "deployment tools/grafana not found")
    assert missing == (grpc.StatusCode.NOT_FOUND, "deployment tools/nope not found")
    # Only the granted write reached the API server.
    assert granted.target("apps", "api") is not None
    assert granted.requested_by() == [WRITER]

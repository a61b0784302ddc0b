"""ReplicaService over mTLS against the fake API server: happy and unhappy paths side by side."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest

from replicant.v1 import replicant_pb2 as pb
from server.app import Extensions
from server.kube.errors import StaleVersionError
from server.kube.views import DesiredStateView, ReconcileView
from server.tests.conftest import Harness, started, stub

if TYPE_CHECKING:
    from pathlib import Path

    from server.kube.informer import Key
    from server.tests.fakes import FakeKube

pytestmark = pytest.mark.asyncio


def ref(ns: str = "apps", name: str = "api") -> pb.DeploymentRef:
    return pb.DeploymentRef(namespace=ns, name=name)


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


UID = "6f1c1a52-0b5e-4c59-9a53-2d2f1d3c8e01"
DESIRED = DesiredStateView(
    replicas=5,
    requested_by="spiffe://replicant.dev/client/writer",
    requested_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    version=f"{UID}:42",
    reconcile=ReconcileView(
        converged=False, reason="Progressing", message="", observed_generation=1
    ),
)


class FakeDesired:
    """DesiredStateLookup + DesiredStateStore in memory."""

    def __init__(self) -> None:
        self.synced = True
        self.stored: dict[Key, DesiredStateView] = {("apps", "web"): DESIRED}
        self.calls: list[tuple[Key, int, str, str]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.entered = 0

    def get(self, key: Key) -> DesiredStateView | None:
        return self.stored.get(key)

    async def set(
        self, key: Key, replicas: int, requested_by: str, expected_version: str
    ) -> DesiredStateView:
        self.entered += 1
        await self.release.wait()
        self.calls.append((key, replicas, requested_by, expected_version))
        if expected_version and expected_version != DESIRED.version:
            raise StaleVersionError("stale")
        view = DesiredStateView(replicas, requested_by, DESIRED.requested_at, f"{UID}:43", None)
        self.stored[key] = view
        return view


# -- GetReplicas ------------------------------------------------------------------------------


async def test_get_replicas_returns_current_counts_from_the_cache(harness: Harness) -> None:
    lists_before = len(harness.kube.list_calls)
    async with harness.channel("reader") as chan:
        response = await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref()))
    current = response.deployment.current
    assert (current.spec_replicas, current.replicas, current.ready_replicas) == (3, 3, 2)
    assert response.deployment.ref == ref()
    assert not response.deployment.HasField("desired")
    assert len(harness.kube.list_calls) == lists_before  # zero API requests per read


async def test_get_replicas_of_unknown_deployment_is_not_found(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        code = await code_of(stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="nope"))))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("", "api"),
        ("Apps", "api"),
        ("apps", ""),
        ("apps", "API"),
        ("apps", "-api"),
        ("apps", "a" * 254),
        ("a" * 64, "api"),
        ("apps", "api_v2"),
        ("apps/x", "api"),
    ],
)
async def test_get_replicas_rejects_invalid_names(
    harness: Harness, namespace: str, name: str
) -> None:
    async with harness.channel("reader") as chan:
        call = stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(namespace, name)))
        assert await code_of(call) == grpc.StatusCode.INVALID_ARGUMENT


async def test_caller_without_role_is_denied_before_any_lookup(harness: Harness) -> None:
    async with harness.channel("nobody") as chan:
        existing = await code_of(stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref())))
        missing = await code_of(stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="nope"))))
        invalid = await code_of(stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="X"))))
        listing = await code_of(stub(chan).ListDeployments(pb.ListDeploymentsRequest()))
    assert {existing, missing, invalid, listing} == {grpc.StatusCode.PERMISSION_DENIED}


async def test_get_replicas_fills_desired_from_the_replicatarget_lookup(
    pki: Path, kube: FakeKube
) -> None:
    desired = FakeDesired()
    async with started(pki, kube, extensions=Extensions(desired=desired)) as running:
        await running.wait_ready()
        async with running.channel("reader") as chan:
            web = await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="web")))
            api = await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="api")))
    assert web.deployment.desired.replicas == 5
    assert web.deployment.desired.version == f"{UID}:42"
    assert web.deployment.desired.reconcile.reason == "Progressing"
    assert web.deployment.desired.requested_at.ToDatetime(tzinfo=UTC) == DESIRED.requested_at
    assert not api.deployment.HasField("desired")


# -- ListDeployments --------------------------------------------------------------------------


async def test_list_deployments_pages_in_namespace_then_name_order(harness: Harness) -> None:
    names: list[tuple[str, str]] = []
    token = ""
    pages = 0
    async with harness.channel("reader") as chan:
        for _ in range(10):  # bounded
            page = await stub(chan).ListDeployments(
                pb.ListDeploymentsRequest(page_size=2, page_token=token)
            )
            pages += 1
            names += [(d.ref.namespace, d.ref.name) for d in page.deployments]
            token = page.next_page_token
            if not token:
                break
    assert pages == 3
    assert names == sorted(names)
    assert len(names) == 5


async def test_list_deployments_filters_by_namespace(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        page = await stub(chan).ListDeployments(pb.ListDeploymentsRequest(namespace="batch"))
    assert [d.ref.name for d in page.deployments] == ["jobs", "reports"]
    assert page.next_page_token == ""


@pytest.mark.parametrize(
    "request_",
    [
        pb.ListDeploymentsRequest(page_size=501),
        pb.ListDeploymentsRequest(page_size=-1),
        pb.ListDeploymentsRequest(page_token="not-a-token"),
        pb.ListDeploymentsRequest(page_token="eyJucyI6IDF9"),  # {"ns": 1}
        pb.ListDeploymentsRequest(namespace="Bad_NS"),
    ],
)
async def test_list_deployments_rejects_invalid_requests(
    harness: Harness, request_: pb.ListDeploymentsRequest
) -> None:
    async with harness.channel("reader") as chan:
        assert await code_of(stub(chan).ListDeployments(request_)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )


# -- SetReplicas ------------------------------------------------------------------------------


async def test_set_replicas_without_a_store_is_unimplemented(harness: Harness) -> None:
    async with harness.channel("writer") as chan:
        call = stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=4))
        assert await code_of(call) == grpc.StatusCode.UNIMPLEMENTED


async def test_set_replicas_records_desired_state_with_caller_identity(
    pki: Path, kube: FakeKube
) -> None:
    desired = FakeDesired()
    async with started(pki, kube, extensions=Extensions(desired=desired, store=desired)) as app:
        await app.wait_ready()
        async with app.channel("writer") as chan:
            response = await stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=4))
            stale = await code_of(
                stub(chan).SetReplicas(
                    pb.SetReplicasRequest(ref=ref(), replicas=4, expected_version=f"{UID}:7")
                )
            )
            malformed = await code_of(
                stub(chan).SetReplicas(
                    pb.SetReplicasRequest(ref=ref(), replicas=4, expected_version="7")
                )
            )
    assert response.desired.replicas == 4
    assert response.desired.version == f"{UID}:43"
    assert desired.calls[0] == (("apps", "api"), 4, "spiffe://replicant.dev/client/writer", "")
    assert (stale, malformed) == (grpc.StatusCode.ABORTED, grpc.StatusCode.INVALID_ARGUMENT)
    assert len(desired.calls) == 2  # the malformed one never reached the store


async def test_reader_calling_set_replicas_is_denied(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        call = stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=4))
        assert await code_of(call) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("replicas", [-1, 1001, 2**31 - 1])
async def test_set_replicas_rejects_out_of_range_counts(harness: Harness, replicas: int) -> None:
    async with harness.channel("writer") as chan:
        call = stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=replicas))
        assert await code_of(call) == grpc.StatusCode.INVALID_ARGUMENT


async def test_set_replicas_of_unknown_deployment_is_not_found(harness: Harness) -> None:
    async with harness.channel("writer") as chan:
        call = stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(name="nope"), replicas=1))
        assert await code_of(call) == grpc.StatusCode.NOT_FOUND


async def test_oversized_request_is_refused(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        call = stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="a" * 20_000)))
        assert await code_of(call) == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- readiness ----------------------------------------------------------------------------------


async def test_reads_are_unavailable_until_the_cache_is_synced(pki: Path, kube: FakeKube) -> None:
    kube.fail_lists = True
    async with started(pki, kube) as app:
        async with app.channel("reader") as chan:
            get = await code_of(stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref())))
            listing = await code_of(stub(chan).ListDeployments(pb.ListDeploymentsRequest()))
        reason = app.app.readiness.reason()
    assert (get, listing) == (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)
    assert reason == "cache not synced"


async def test_reads_are_unavailable_while_the_api_server_is_down(
    pki: Path, kube: FakeKube
) -> None:
    kube.down = True
    async with started(pki, kube) as app:
        async with app.channel("reader") as chan:
            code = await code_of(stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref())))
        reason = app.app.readiness.reason()
    assert code == grpc.StatusCode.UNAVAILABLE
    assert reason == "Kubernetes API server not answered recently"

"""Pre-encoded answers (server/encoding.py) are byte for byte the message-built ones.

The oracle is the old path: `deployment_message` for each Deployment, put into a response message
and serialized. Over real mTLS, the raw bytes of every page are compared with it, before and after
the Deployments and their desired state change.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from kube.client import MERGE_PATCH
from kube.replicatargets import object_path, target_collection_path
from kube.tests.fakes import deployment, replica_target
from kube.views import DeploymentView, DesiredStateView, ReconcileView
from replicant.v1 import replicant_pb2 as pb
from server import encoding
from server.tests.conftest import DEPLOYMENTS, TARGETS, started
from server.tests.test_api import UID

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import grpc

    from kube.informer import Key
    from kube.tests.fakes import FakeKube
    from server.tests.conftest import Harness

LIST = "/replicant.v1.ReplicaService/ListDeployments"
GET = "/replicant.v1.ReplicaService/GetReplicas"
AS_OF = datetime(2026, 12, 2, 11, 0, 0, 123456, tzinfo=UTC)


def view(name: str, replicas: int = 1, ns: str = "apps") -> DeploymentView:
    return DeploymentView(ns, name, f"uid-{name}", "7", replicas, replicas, 1, 1, 1, 3, 2)


def desired(message: str = "", replicas: int = 5) -> DesiredStateView:
    reconcile = ReconcileView(
        converged=True, reason="Converged", message=message, observed_generation=4
    )
    return DesiredStateView(replicas, "spiffe://x/writer", AS_OF, "v:1", reconcile)


def oracle_list(
    entries: list[tuple[DeploymentView, DesiredStateView | None]],
    token: str,
    as_of: datetime | None,
) -> bytes:
    response = pb.ListDeploymentsResponse(
        deployments=[encoding.deployment_message(v, d) for v, d in entries], next_page_token=token
    )
    if as_of is not None:
        response.as_of.FromDatetime(as_of)
    return response.SerializeToString()


@pytest.mark.parametrize("token", ["", "eyJhIjoxfQ.dGFn"])
@pytest.mark.parametrize("as_of", [None, AS_OF, datetime(1970, 1, 1, tzinfo=UTC)])
@pytest.mark.parametrize(
    "entries",
    [
        [],
        [(view("a"), None)],
        [(view("a"), desired()), (view("b", 0), None), (view("c", 1000), desired(replicas=0))],
        [(view(f"d{i:03d}"), desired() if i % 3 else None) for i in range(500)],
        # Entries longer than 127 and 16,383 bytes: multi-byte length prefixes.
        [(view("long"), desired("m" * 200)), (view("longer"), desired("m" * 20_000))],
    ],
)
def test_a_page_joined_from_encodings_is_the_message_built_page(
    entries: list[tuple[DeploymentView, DesiredStateView | None]],
    token: str,
    as_of: datetime | None,
) -> None:
    encoded = encoding.EncodedDeployments()
    body = b"".join([encoded.framed(v, d) for v, d in entries])
    page = encoding.list_response(body, token, as_of)
    assert page == oracle_list(entries, token, as_of)


@pytest.mark.parametrize("as_of", [None, AS_OF, datetime(2026, 1, 1), datetime(1960, 5, 5)])
@pytest.mark.parametrize("stored", [None, desired(), desired("m" * 300)])
def test_a_get_answer_from_its_encoding_is_the_message_built_answer(
    stored: DesiredStateView | None, as_of: datetime | None
) -> None:
    expected = pb.GetReplicasResponse(deployment=encoding.deployment_message(view("a"), stored))
    if as_of is not None:
        expected.as_of.FromDatetime(as_of)
    framed = encoding.EncodedDeployments().framed(view("a"), stored)
    assert encoding.get_response(framed, as_of) == expected.SerializeToString()


def test_timestamps_with_an_offset_are_written_as_utc() -> None:
    at = datetime(2026, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=5)))
    expected = pb.GetReplicasResponse()
    expected.as_of.FromDatetime(at)
    assert encoding.get_response(b"", at) == expected.SerializeToString()


def test_an_encoding_is_reused_while_both_views_are_the_same_objects() -> None:
    encoded, current, stored = encoding.EncodedDeployments(), view("a"), desired()
    assert encoded.framed(current, stored) is encoded.framed(current, stored)


@pytest.mark.parametrize(
    "change",
    [
        lambda v, d: (view("a", 9), d),  # the Deployment changed
        lambda v, d: (v, desired(replicas=9)),  # the desired state changed
        lambda v, d: (v, None),  # the ReplicaTarget went
        lambda v, d: (view("a"), d),  # an equal view, but a new object (a relist): re-encoded
    ],
)
def test_an_encoding_is_made_again_when_either_view_is_replaced(
    change: Callable[[DeploymentView, DesiredStateView], tuple[DeploymentView, DesiredStateView]],
) -> None:
    encoded, current, stored = encoding.EncodedDeployments(), view("a"), desired()
    before = encoded.framed(current, stored)
    new_view, new_desired = change(current, stored)
    after = encoded.framed(new_view, new_desired)
    assert after is not before
    expected = pb.GetReplicasResponse(deployment=encoding.deployment_message(new_view, new_desired))
    assert encoding.get_response(after, None) == expected.SerializeToString()
    assert len(encoded) == 1


def test_forget_drops_the_entry() -> None:
    encoded = encoding.EncodedDeployments()
    encoded.framed(view("a"), None)
    encoded.forget(("apps", "a"), view("a"), None)
    assert ("apps", "a") not in encoded
    assert len(encoded) == 0


def test_a_kept_page_is_reused_until_any_change_and_their_number_is_bounded() -> None:
    encoded, builds = encoding.EncodedDeployments(), []

    def build() -> encoding.Page:
        builds.append(1)
        return b"body", None

    first = encoded.page("p", build)
    again = encoded.page("p", build)
    encoded.changed(("apps", "web"), None, None)  # a ReplicaTarget changed
    after_target = encoded.page("p", build)
    encoded.forget(("apps", "api"), None, None)  # a Deployment changed
    encoded.page("p", build)
    for number in range(encoding.MAX_PAGES + 1):
        encoded.page(number, build)

    assert first is again
    assert after_target == first
    assert len(builds) == 3 + encoding.MAX_PAGES + 1
    assert len(encoded._pages) <= encoding.MAX_PAGES


# -- over mTLS, against the cache -------------------------------------------------------------


async def raw_pages(chan: grpc.aio.Channel, size: int) -> list[bytes]:
    """Every page of a listing as the bytes on the wire."""
    call: grpc.aio.UnaryUnaryMultiCallable[pb.ListDeploymentsRequest, bytes] = chan.unary_unary(
        LIST, request_serializer=pb.ListDeploymentsRequest.SerializeToString
    )
    pages: list[bytes] = []
    token = ""
    for _ in range(100):  # bounded: a handful of Deployments
        raw = await call(pb.ListDeploymentsRequest(page_size=size, page_token=token))
        assert isinstance(raw, bytes)
        pages.append(raw)
        token = pb.ListDeploymentsResponse.FromString(raw).next_page_token
        if not token:
            return pages
    raise AssertionError("the listing never ended")


def expected_pages(harness: Harness, pages: list[bytes], size: int) -> list[bytes]:
    """The oracle over the cache and the stored ReplicaTargets: chunks of the sorted Deployments,
    with the answers' tokens."""
    entries = [(v, harness.desired(k)) for k, v in harness.app.deployments.iter_from(None)]
    chunks = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
    assert len(chunks) == len(pages)
    out = []
    for chunk, raw in zip(chunks, pages, strict=True):
        answer = pb.ListDeploymentsResponse.FromString(raw)
        out.append(oracle_list(chunk, answer.next_page_token, answer.as_of.ToDatetime(tzinfo=UTC)))
    return out


async def until(check: Callable[[], bool]) -> None:
    for _ in range(500):  # bounded: the fake delivers at once
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


@pytest.mark.asyncio
async def test_listed_pages_are_the_message_built_ones_before_and_after_updates_and_deletes(
    pki: Path, kube: FakeKube
) -> None:
    kube.objects[TARGETS] = [replica_target("apps", "web", 5, uid=UID)]  # the rest unmanaged
    async with started(pki, kube) as harness:
        await harness.wait_ready()
        targets = next(i for i in harness.app.informers if i.path == TARGETS)
        async with harness.channel("reader") as chan:
            pages = await raw_pages(chan, 2)
            assert pages == expected_pages(harness, pages, 2)
            assert ("batch", "jobs") in harness.app.encoded

            watch = next(w for w in kube.watches if w.path == DEPLOYMENTS)
            watch.events.put_nowait(
                {"type": "MODIFIED", "object": deployment("apps", "api", replicas=9, rv=200)}
            )
            watch.events.put_nowait(
                {"type": "DELETED", "object": deployment("batch", "jobs", rv=201)}
            )
            # A new desired state, and a newly managed Deployment, written by another client.
            web = {"spec": {"replicas": 8}}
            await kube.request(
                "PATCH", object_path("apps", "web"), body=web, content_type=MERGE_PATCH
            )
            grafana = replica_target("tools", "grafana", 5, uid=UID)
            await kube.request("POST", target_collection_path("tools"), body=grafana)
            await until(lambda: harness.app.deployments.get(("batch", "jobs")) is None)
            await until(lambda: targets.get(("tools", "grafana")) is not None)
            assert ("batch", "jobs") not in harness.app.encoded  # dropped with its Deployment

            after = await raw_pages(chan, 2)
            assert after == expected_pages(harness, after, 2)
            listed = [
                (d.ref.namespace, d.ref.name, d.current.spec_replicas, d.desired.replicas)
                for raw in after
                for d in pb.ListDeploymentsResponse.FromString(raw).deployments
            ]
            assert ("apps", "api", 9, 0) in listed
            assert ("apps", "web", 2, 8) in listed
            assert ("tools", "grafana", 1, 5) in listed
            assert all(name != "jobs" for _, name, _, _ in listed)


@pytest.mark.asyncio
async def test_a_listed_page_shows_a_desired_state_that_changed_alone(
    pki: Path, kube: FakeKube
) -> None:
    kube.objects[TARGETS] = [replica_target("apps", "web", 5, uid=UID)]
    async with started(pki, kube) as harness:
        await harness.wait_ready()
        targets = next(i for i in harness.app.informers if i.path == TARGETS)
        async with harness.channel("reader") as chan:
            before = await raw_pages(chan, 500)
            patch = {"spec": {"replicas": 8}}
            await kube.request(
                "PATCH", object_path("apps", "web"), body=patch, content_type=MERGE_PATCH
            )
            await until(lambda: (t := targets.get(("apps", "web"))) is not None and t.replicas == 8)
            after = await raw_pages(chan, 500)

    assert after == expected_pages(harness, after, 500)
    assert after != before
    web = [
        d
        for d in pb.ListDeploymentsResponse.FromString(after[0]).deployments
        if d.ref.name == "web"
    ]
    assert web[0].desired.replicas == 8


@pytest.mark.asyncio
async def test_get_answers_the_message_built_bytes(harness: Harness) -> None:
    key: Key = ("apps", "api")
    async with harness.channel("reader") as chan:
        call: grpc.aio.UnaryUnaryMultiCallable[pb.GetReplicasRequest, bytes] = chan.unary_unary(
            GET, request_serializer=pb.GetReplicasRequest.SerializeToString
        )
        raw = await call(pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace=key[0], name=key[1])))
    assert isinstance(raw, bytes)
    cached = harness.app.deployments.get(key)
    assert cached is not None
    expected = pb.GetReplicasResponse(
        deployment=encoding.deployment_message(cached, harness.desired(key))
    )
    expected.as_of.CopyFrom(pb.GetReplicasResponse.FromString(raw).as_of)
    assert raw == expected.SerializeToString()

"""ReplicaService over mTLS against the fake API server: happy and unhappy paths side by side."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from kube.errors import ApiUnavailableError
from kube.probe import ApiServerProbe
from kube.tests.fakes import deployment, replica_target
from replicant.v1 import replicant_pb2 as pb
from replicant.v1 import replicant_pb2_grpc
from server.tests.conftest import DEPLOYMENTS, TARGETS, WRITER, Harness, started, stub
from server.tests.test_shutdown import http_get

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from google.protobuf.timestamp_pb2 import Timestamp

    from kube.client import JSONObject
    from kube.tests.fakes import FakeKube

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
REQUESTED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def web_target() -> JSONObject:
    """apps/web's ReplicaTarget: 5 asked for by the writer; spec 42 not yet reconciled."""
    progressing = {
        "type": "Reconciled",
        "status": "False",
        "reason": "Progressing",
        "message": "",
        "lastTransitionTime": "2026-01-02T03:04:06Z",
        "observedGeneration": 1,
    }
    return replica_target(
        "apps",
        "web",
        5,
        uid=UID,
        generation=42,
        requested_by=WRITER,
        requested_at="2026-01-02T03:04:05Z",
        conditions=[progressing],
    )


def written_replicas(kube: FakeKube) -> list[object]:
    """spec.replicas of every write sent to the fake API server, in order."""
    return [body["spec"]["replicas"] for _, _, body in kube.writes if isinstance(body, dict)]


@pytest_asyncio.fixture
async def managed(pki: Path, kube: FakeKube) -> AsyncIterator[Harness]:
    """The harness with apps/web's ReplicaTarget stored in the fake API server."""
    kube.objects[TARGETS] = [web_target()]
    async with started(pki, kube) as running:
        await running.wait_ready()
        yield running


def set_web(expected_version: str, replicas: int = 4) -> pb.SetReplicasRequest:
    return pb.SetReplicasRequest(
        ref=ref(name="web"), replicas=replicas, expected_version=expected_version
    )


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


async def test_get_replicas_fills_desired_from_the_replicatarget_cache(managed: Harness) -> None:
    async with managed.channel("reader") as chan:
        web = await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="web")))
        api = await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="api")))
    assert web.deployment.desired.replicas == 5
    assert web.deployment.desired.requested_by == WRITER
    assert web.deployment.desired.version == f"{UID}:42"
    assert web.deployment.desired.reconcile.reason == "Progressing"
    assert not web.deployment.desired.reconcile.converged
    assert web.deployment.desired.requested_at.ToDatetime(tzinfo=UTC) == REQUESTED_AT
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


async def test_a_repeated_list_shows_deployment_and_replicatarget_changes(
    harness: Harness,
) -> None:
    def listed(page: pb.ListDeploymentsResponse) -> list[tuple[str, int, int]]:
        return [(d.ref.name, d.current.spec_replicas, d.desired.replicas) for d in page.deployments]

    request = pb.ListDeploymentsRequest(namespace="apps", page_size=1)
    async with harness.channel("writer") as chan:
        first = await stub(chan).ListDeployments(request)
        watch = next(w for w in harness.kube.watches if w.path == DEPLOYMENTS)
        watch.events.put_nowait({"type": "MODIFIED", "object": deployment("batch", "jobs", 2, 2)})
        await until("the change cached", lambda: _spec(harness, ("batch", "jobs"), 2))
        again = await stub(chan).ListDeployments(request)  # changed elsewhere: the same page
        watch.events.put_nowait({"type": "MODIFIED", "object": deployment("apps", "api", 7, 2)})
        await until("the change cached", lambda: _spec(harness, ("apps", "api"), 7))
        changed = await stub(chan).ListDeployments(request)
        await stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=4))
        desired = await stub(chan).ListDeployments(request)
    assert listed(first) == listed(again) == [("api", 3, 0)]
    assert first.next_page_token == again.next_page_token != ""
    assert listed(changed) == [("api", 7, 0)]
    assert listed(desired) == [("api", 7, 4)]


async def _spec(harness: Harness, key: tuple[str, str], replicas: int) -> bool:
    view = harness.app.deployments.get(key)
    return view is not None and view.spec_replicas == replicas


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


async def test_set_replicas_creates_the_replicatarget_through_the_api_server(
    harness: Harness,
) -> None:
    async with harness.channel("writer") as chan:
        response = await stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=4))
    assert response.desired.replicas == 4
    creates = [(m, p) for m, p, _ in harness.kube.writes if m == "POST"]
    assert creates == [("POST", "/apis/replicant.dev/v1alpha1/namespaces/apps/replicatargets")]
    body = harness.kube.writes[-1][2]
    assert isinstance(body, dict)
    annotations = body["metadata"]["annotations"]
    assert annotations["replicant.dev/requested-by"] == "spiffe://replicant.dev/client/writer"


async def test_set_replicas_records_the_caller_as_requested_by(harness: Harness) -> None:
    async with harness.channel("writer") as chan:
        response = await stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=4))
    stored = harness.target("apps", "api")
    assert stored is not None
    assert harness.requested_by() == [WRITER]
    assert response.desired.requested_by == WRITER
    assert response.desired.version == f"{stored['metadata']['uid']}:1"


async def test_set_replicas_with_the_current_version_updates_the_replicatarget(
    managed: Harness,
) -> None:
    async with managed.channel("writer") as chan:
        response = await stub(chan).SetReplicas(set_web(f"{UID}:42"))
    stored = managed.target("apps", "web")
    assert stored is not None
    assert (response.desired.replicas, response.desired.version) == (4, f"{UID}:43")
    assert (stored["spec"]["replicas"], stored["metadata"]["generation"]) == (4, 43)


async def test_set_replicas_with_a_stale_version_is_aborted_before_writing(
    managed: Harness,
) -> None:
    async with managed.channel("writer") as chan:
        code = await code_of(stub(chan).SetReplicas(set_web(f"{UID}:7")))
    assert code == grpc.StatusCode.ABORTED
    assert managed.kube.writes == []
    assert managed.target("apps", "web") == web_target()


async def test_set_replicas_is_aborted_when_the_spec_changes_between_read_and_write(
    managed: Harness,
) -> None:
    managed.kube.writes_released.clear()
    async with managed.channel("writer") as chan:
        call = asyncio.ensure_future(stub(chan).SetReplicas(set_web(f"{UID}:42")))
        for _ in range(500):  # bounded: until the compare-and-set patch is at the API server
            if managed.kube.writes:
                break
            await asyncio.sleep(0.01)
        another = managed.target("apps", "web")  # the stored object itself
        assert another is not None
        another["spec"]["replicas"] = 6  # another writer's spec lands first
        another["metadata"]["generation"] = 43
        managed.kube.writes_released.set()
        code = await code_of(call)
    assert code == grpc.StatusCode.ABORTED  # the patch's `test` op failed inside the API server
    assert [method for method, _, _ in managed.kube.writes] == ["PATCH"]
    assert (another["spec"]["replicas"], another["metadata"]["generation"]) == (6, 43)


async def test_set_replicas_with_a_malformed_version_never_reaches_the_api_server(
    managed: Harness,
) -> None:
    async with managed.channel("writer") as chan:
        code = await code_of(stub(chan).SetReplicas(set_web("7")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert (managed.kube.gets, managed.kube.writes) == ([], [])


async def test_reader_calling_set_replicas_is_denied(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        call = stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=4))
        assert await code_of(call) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("replicas", [-1, 1001, 2**31 - 1])
async def test_set_replicas_rejects_out_of_range_counts(harness: Harness, replicas: int) -> None:
    async with harness.channel("writer") as chan:
        call = stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=replicas))
        assert await code_of(call) == grpc.StatusCode.INVALID_ARGUMENT


async def test_set_replicas_without_a_count_is_invalid_not_zero(harness: Harness) -> None:
    async with harness.channel("writer") as chan:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref()))
        zero = await stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=0))
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert missing.value.details() == "replicas is required"
    assert zero.desired.replicas == 0
    # Only the explicit zero was written (a patch, then the create the 404 calls for).
    assert written_replicas(harness.kube) == [0, 0]


async def test_set_replicas_of_unknown_deployment_is_not_found(harness: Harness) -> None:
    async with harness.channel("writer") as chan:
        call = stub(chan).SetReplicas(pb.SetReplicasRequest(ref=ref(name="nope"), replicas=1))
        assert await code_of(call) == grpc.StatusCode.NOT_FOUND


async def test_oversized_request_is_refused(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        call = stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref(name="a" * 20_000)))
        assert await code_of(call) == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- undecodable requests ----------------------------------------------------------------------

TRUNCATED = b"\x0a\x05\x0a"  # field 1 says 5 bytes follow, only 1 does


def raw(data: bytes) -> bytes:
    return data


RAW = {"request_serializer": raw, "response_deserializer": raw}


@pytest.mark.parametrize(
    "method",
    [
        "/replicant.v1.ReplicaService/GetReplicas",
        "/replicant.v1.ReplicaService/SetReplicas",
        "/replicant.v1.ReplicaService/ListDeployments",
        "/grpc.health.v1.Health/Check",
    ],
)
async def test_undecodable_unary_request_is_invalid_argument(harness: Harness, method: str) -> None:
    async with harness.channel("writer") as chan:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await chan.unary_unary(method, **RAW)(TRUNCATED, timeout=5)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == "malformed request: the message cannot be decoded"


@pytest.mark.parametrize(
    "payload",
    [
        b"\x0a\x04\x12\x02\xff\xfe",  # ref.name is not UTF-8
        b"\x7b" * 200 + b"\x7c" * 200,  # unknown groups nested past the parser's depth limit
        b"\x0a\xff\xff\xff\xff\x0f",  # a length far beyond the message
        b"\xff",  # not even a tag
    ],
)
async def test_crafted_request_bytes_are_invalid_argument(harness: Harness, payload: bytes) -> None:
    async with harness.channel("reader") as chan:
        get = chan.unary_unary("/replicant.v1.ReplicaService/GetReplicas", **RAW)
        assert await code_of(get(payload, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_undecodable_request_is_authorized_first(harness: Harness) -> None:
    async with harness.channel("nobody") as chan:
        get = chan.unary_unary("/replicant.v1.ReplicaService/GetReplicas", **RAW)
        call = get(TRUNCATED, timeout=5)
        assert await code_of(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_undecodable_streaming_requests_are_invalid_argument(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        watch = chan.unary_stream("/grpc.health.v1.Health/Watch", **RAW)(TRUNCATED, timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as watch_failed:
            await watch.read()
        reflect = chan.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", **RAW
        )(timeout=5)
        await reflect.write(TRUNCATED)
        with pytest.raises(grpc.aio.AioRpcError) as reflect_failed:
            await reflect.read()
    codes = {watch_failed.value.code(), reflect_failed.value.code()}
    details = {watch_failed.value.details(), reflect_failed.value.details()}
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    assert details == {"malformed request: the message cannot be decoded"}


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


async def health_of(chan: grpc.aio.Channel, service: str) -> str:
    reply = await health_pb2_grpc.HealthStub(chan).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def until(what: str, condition: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(300):  # bounded: 3 s
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {what}")


def age(as_of: Timestamp) -> float:
    return (datetime.now(UTC) - as_of.ToDatetime(UTC)).total_seconds()


async def test_a_warm_cache_answers_reads_through_an_api_server_outage_and_says_how_old(
    pki: Path, kube: FakeKube
) -> None:
    probe = ApiServerProbe(kube, interval=0.02)
    async with started(pki, kube, probe=probe) as app:
        await app.wait_ready()
        async with app.channel("writer") as chan:
            replicas = stub(chan)
            await until("API server answering", lambda: _answering(probe, True))
            fresh = age((await replicas.GetReplicas(pb.GetReplicasRequest(ref=ref()))).as_of)

            kube.down = True
            for watch in kube.watches:
                watch.events.put_nowait(ApiUnavailableError("connection reset"))
            await until("API server not answering", lambda: _answering(probe, False))
            during = await replicas.GetReplicas(pb.GetReplicasRequest(ref=ref()))
            await asyncio.sleep(0.2)
            later = await replicas.ListDeployments(pb.ListDeploymentsRequest())
            overall = await health_of(chan, "")
            readyz = await http_get(app.app.http_port, "/readyz")
            write = await code_of(
                replicas.SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=3))
            )

            kube.down = False
            await until("caught up", lambda: _caught_up(replicas))
            after = await replicas.SetReplicas(pb.SetReplicasRequest(ref=ref(), replicas=2))
    assert fresh < 0.5
    assert during.deployment.current.spec_replicas == 3  # still answered from the cache
    # Frozen at the last word from the API server (to the microseconds of clock conversion).
    assert abs(age(during.as_of) - age(later.as_of)) < 0.001
    assert age(later.as_of) >= 0.2
    assert [d.ref.name for d in later.deployments] == ["api", "web", "jobs", "reports", "grafana"]
    assert overall == "SERVING"
    assert readyz.startswith("HTTP/1.1 200")
    assert write == grpc.StatusCode.UNAVAILABLE
    # Only the write after recovery reached the API server (a patch, then the create).
    assert set(written_replicas(kube)) == {2}
    assert after.desired.replicas == 2


async def _answering(probe: ApiServerProbe, answering: bool) -> bool:
    return probe.answering == answering


async def _caught_up(replicas: replicant_pb2_grpc.ReplicaServiceAsyncStub) -> bool:
    answer = await replicas.GetReplicas(pb.GetReplicasRequest(ref=ref()))
    return age(answer.as_of) < 0.1

"""Probes and metrics on the plaintext port."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from replicant.v1 import replicant_pb2 as pb
from server.tests.conftest import Harness, started, stub
from server.tests.test_shutdown import http_get
from tools import exposition

if TYPE_CHECKING:
    from pathlib import Path

    from kube.tests.fakes import FakeKube

pytestmark = pytest.mark.asyncio


async def test_livez_and_readyz_answer_ok_when_ready(harness: Harness) -> None:
    livez = await http_get(harness.app.http_port, "/livez")
    readyz = await http_get(harness.app.http_port, "/readyz")
    assert livez.startswith("HTTP/1.1 200")
    assert readyz.startswith("HTTP/1.1 200")


async def test_readyz_and_grpc_health_agree_when_the_api_server_was_never_reached(
    pki: Path, kube: FakeKube
) -> None:
    kube.down = True
    async with started(pki, kube) as app:
        readyz = await http_get(app.app.http_port, "/readyz")
        async with app.channel("nobody") as chan:  # health needs only a valid certificate
            checks = [
                await health_pb2_grpc.HealthStub(chan).Check(
                    health_pb2.HealthCheckRequest(service=service)
                )
                for service in ("", "replicant.v1.ReplicaService")
            ]
    assert readyz.startswith("HTTP/1.1 503")
    assert readyz.endswith("cache not synced\n")
    assert {c.status for c in checks} == {health_pb2.HealthCheckResponse.NOT_SERVING}


async def test_grpc_health_is_serving_for_both_names_when_ready(harness: Harness) -> None:
    async with harness.channel("nobody") as chan:
        for _ in range(300):  # bounded: the publisher pushes readiness once a second
            overall = await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest())
            if overall.status == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.01)
        service = await health_pb2_grpc.HealthStub(chan).Check(
            health_pb2.HealthCheckRequest(service="replicant.v1.ReplicaService")
        )
    assert overall.status == health_pb2.HealthCheckResponse.SERVING
    assert service.status == health_pb2.HealthCheckResponse.SERVING


async def test_metrics_count_requests_by_method_and_code_and_show_the_cache(
    harness: Harness,
) -> None:
    async with harness.channel("reader") as chan:
        await stub(chan).GetReplicas(
            pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace="apps", name="api"))
        )
    response = await http_get(harness.app.http_port, "/metrics")
    head, body = response.split("\r\n\r\n", 1)
    method = "replicant.v1.ReplicaService/GetReplicas"
    got = exposition.samples(body)

    def value(name: str, **labels: str) -> float | None:
        return got.get((name, frozenset(labels.items())))

    assert "Content-Type: text/plain; version=1.0.0; charset=utf-8" in head.split("\r\n")
    assert value("replicant_grpc_requests_total", method=method, code="OK") == 1
    assert value("replicant_grpc_request_duration_seconds_count", method=method) == 1
    assert value("replicant_grpc_request_duration_seconds_bucket", method=method, le="+Inf") == 1
    assert value("replicant_cache_objects", resource="deployments") == 5
    assert value("replicant_cache_age_seconds") is not None
    # The reconciler's series are on the same registry from the start, leading or not.
    reconciles = value("replicant_reconcile_total", controller="replicatarget", result="success")
    assert reconciles is not None
    assert not any(name.endswith("_created") for name, _ in got)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        ("GET /nope HTTP/1.1\r\nHost: x", "404"),
        ("POST /livez HTTP/1.1\r\nHost: x", "405"),
        ("garbage", "400"),
        ("GET /livez HTTP/1.1\r\nHost: x\r\nX: " + "a" * 9000, "400"),  # a field over 8 KiB
        ("GET /livez HTTP/1.1\r\nHost: x" + "\r\nX: a" * 40, "400"),  # over 32 header fields
    ],
)
async def test_unknown_malformed_or_oversized_requests_are_refused(
    harness: Harness, head: str, status: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.app.http_port)
    writer.write(f"{head}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    assert response.split(" ", 2)[1] == status


async def test_a_client_that_never_finishes_its_head_is_disconnected(harness: Harness) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.app.http_port)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # and then nothing
    await writer.drain()
    async with asyncio.timeout(30):  # bounded; the server closes it after IDLE_TIMEOUT_S
        leftover = await reader.read()
    writer.close()
    assert leftover == b""

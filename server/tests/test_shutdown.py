"""Graceful shutdown and background tasks: readiness drops first, calls finish, nothing leaks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from replicant.v1 import replicant_pb2 as pb
from server import app as app_module
from server import health
from server.tests.conftest import channel, started, stub

if TYPE_CHECKING:
    from pathlib import Path

    from kube.tests.fakes import FakeKube

pytestmark = pytest.mark.asyncio


async def http_get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response.decode()


async def test_stop_lets_in_flight_calls_finish_and_turns_health_off_first(
    pki: Path, kube: FakeKube
) -> None:
    request = pb.SetReplicasRequest(ref=pb.DeploymentRef(namespace="apps", name="api"), replicas=2)
    async with started(pki, kube) as app:
        await app.wait_ready()
        kube.writes_released.clear()  # the API server holds every write until released
        async with app.channel("writer") as chan:
            calls = [asyncio.ensure_future(stub(chan).SetReplicas(request)) for _ in range(5)]
            for _ in range(500):  # bounded: wait until all five writes are at the API server
                if len(kube.writes) == 5:
                    break
                await asyncio.sleep(0.01)
            stopping = asyncio.create_task(app.app.stop())
            for _ in range(500):  # bounded: wait for health to flip
                if app.app.readiness.draining:
                    break
                await asyncio.sleep(0.01)
            readyz = await http_get(app.app.http_port, "/readyz")
            kube.writes_released.set()
            responses = await asyncio.gather(*calls)
            await stopping
    assert readyz.startswith("HTTP/1.1 503")
    assert [r.desired.replicas for r in responses] == [2] * 5
    stored = app.target("apps", "api")
    assert stored is not None
    assert stored["spec"]["replicas"] == 2


async def test_calls_after_stop_are_refused_not_hung(pki: Path, kube: FakeKube) -> None:
    async with started(pki, kube) as app:
        await app.wait_ready()
        port = app.app.grpc_port
        await app.app.stop()
        async with channel(pki, port, "reader") as chan:
            try:
                await stub(chan).GetReplicas(
                    pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace="apps", name="api")),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as err:
                code = err.code()
    assert code == grpc.StatusCode.UNAVAILABLE


async def test_health_publisher_that_crashes_is_restarted(
    pki: Path, kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = health.serve_when_ready
    calls: list[str] = []

    async def crash_once(*args: Any, **kwargs: Any) -> None:
        calls.append("call")
        if len(calls) == 1:
            raise RuntimeError("bug in the health publisher")
        await real(*args, **kwargs)

    monkeypatch.setattr(app_module, "RESTART_DELAY_S", 0.0)
    monkeypatch.setattr(health, "serve_when_ready", crash_once)
    async with started(pki, kube) as app:
        await app.wait_ready()
        for _ in range(500):  # bounded: wait for the restart
            if len(calls) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(calls) == 2
        async with app.channel() as chan:
            answer = await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

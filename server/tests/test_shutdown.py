"""Graceful shutdown: readiness drops first, calls already running finish, nothing leaks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest

from replicant.v1 import replicant_pb2 as pb
from server.app import Extensions
from server.tests.conftest import channel, started, stub
from server.tests.test_api import FakeDesired

if TYPE_CHECKING:
    from pathlib import Path

    from server.tests.fakes import FakeKube

pytestmark = pytest.mark.asyncio


async def http_get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response.decode()


async def test_stop_lets_in_flight_calls_finish_and_turns_health_off_first(
    pki: Path, kube: FakeKube
) -> None:
    desired = FakeDesired()
    desired.release.clear()  # SetReplicas blocks inside the store until released
    request = pb.SetReplicasRequest(ref=pb.DeploymentRef(namespace="apps", name="api"), replicas=2)
    async with started(pki, kube, extensions=Extensions(desired=desired, store=desired)) as app:
        await app.wait_ready()
        async with app.channel("writer") as chan:
            calls = [asyncio.ensure_future(stub(chan).SetReplicas(request)) for _ in range(5)]
            for _ in range(500):  # bounded: wait until all five are inside the handler
                if desired.entered == 5:
                    break
                await asyncio.sleep(0.01)
            stopping = asyncio.create_task(app.app.stop())
            for _ in range(500):  # bounded: wait for health to flip
                if app.app.readiness.draining:
                    break
                await asyncio.sleep(0.01)
            readyz = await http_get(app.app.http_port, "/readyz")
            desired.release.set()
            responses = await asyncio.gather(*calls)
            await stopping
    assert readyz.startswith("HTTP/1.1 503")
    assert [r.desired.replicas for r in responses] == [2] * 5


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

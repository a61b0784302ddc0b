"""The audit trail over real mTLS: a line at once for every write, refusal and error, with the
identity; successful reads summed per (identity, method) and written on flush and on shutdown."""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from replicant.v1 import replicant_pb2 as pb
from server.audit import AccessLog
from server.tests import certs
from server.tests.conftest import READER, WRITER, started, stub
from server.tests.test_api import code_of, ref

if TYPE_CHECKING:
    from pathlib import Path

    from kube.tests.fakes import FakeKube
    from server.tests.conftest import Harness

pytestmark = pytest.mark.asyncio

SERVICE = "/replicant.v1.ReplicaService"
CODE = grpc.StatusCode


def lines(caplog: pytest.LogCaptureFixture, msg: str) -> list[dict[str, Any]]:
    return [
        {k: getattr(r, k, None) for k in ("identity", "method", "code", "count")}
        for r in caplog.records
        if r.name == "replicant.access" and r.getMessage() == msg
    ]


@pytest.fixture
def unnamed(pki: Path, tmp_path: Path) -> Path:
    """The session PKI plus a client certificate from the trusted CA with no SAN (refused)."""
    for name in ("ca.crt", "ca.key", "client-ca.crt", "client-ca.key", "server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    for who in ("reader", "writer"):
        for suffix in ("crt", "key"):
            shutil.copy(pki / f"{who}.{suffix}", tmp_path / f"{who}.{suffix}")
    certs.issue(tmp_path, tmp_path, "no-san")
    return tmp_path


async def test_every_write_refusal_and_error_is_one_line_at_once_with_the_identity(
    unnamed: Path, kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    set_api = pb.SetReplicasRequest(ref=ref(), replicas=4)
    async with started(unnamed, kube) as harness:
        await harness.wait_ready()
        with caplog.at_level(logging.INFO, logger="replicant.access"):
            async with harness.channel("writer") as chan:
                assert await code_of(stub(chan).SetReplicas(set_api)) == CODE.OK
            async with harness.channel("reader") as chan:
                assert await code_of(stub(chan).SetReplicas(set_api)) == CODE.PERMISSION_DENIED
                missing = pb.GetReplicasRequest(ref=ref(name="nope"))
                assert await code_of(stub(chan).GetReplicas(missing)) == CODE.NOT_FOUND
                bad = pb.ListDeploymentsRequest(page_size=501)
                assert await code_of(stub(chan).ListDeployments(bad)) == CODE.INVALID_ARGUMENT
            async with harness.channel("no-san") as chan:
                get = pb.GetReplicasRequest(ref=ref())
                assert await code_of(stub(chan).GetReplicas(get)) == CODE.UNAUTHENTICATED
            written = lines(caplog, "rpc")  # before any flush
    assert written == [
        {"identity": WRITER, "method": f"{SERVICE}/SetReplicas", "code": "OK", "count": None},
        {
            "identity": READER,
            "method": f"{SERVICE}/SetReplicas",
            "code": "PERMISSION_DENIED",
            "count": None,
        },
        {
            "identity": READER,
            "method": f"{SERVICE}/GetReplicas",
            "code": "NOT_FOUND",
            "count": None,
        },
        {
            "identity": READER,
            "method": f"{SERVICE}/ListDeployments",
            "code": "INVALID_ARGUMENT",
            "count": None,
        },
        {
            "identity": "",
            "method": f"{SERVICE}/GetReplicas",
            "code": "UNAUTHENTICATED",
            "count": None,
        },
    ]


async def test_successful_reads_are_summed_per_identity_and_method_until_a_flush(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="replicant.access"):
        async with harness.channel("reader") as chan:
            for _ in range(3):
                await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref()))
            for _ in range(2):
                await stub(chan).ListDeployments(pb.ListDeploymentsRequest())
        before_flush = lines(caplog, "rpc") + lines(caplog, "reads")
        harness.app.access.flush()
        flushed = lines(caplog, "reads")
        harness.app.access.flush()
    assert before_flush == []
    assert flushed == [
        {"identity": READER, "method": f"{SERVICE}/GetReplicas", "code": "OK", "count": 3},
        {"identity": READER, "method": f"{SERVICE}/ListDeployments", "code": "OK", "count": 2},
    ]
    assert lines(caplog, "reads") == flushed  # a second flush has nothing to write


async def test_reads_summed_since_the_last_flush_are_written_on_shutdown(
    pki: Path, kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="replicant.access"):
        async with started(pki, kube) as harness:
            await harness.wait_ready()
            async with harness.channel("reader") as chan:
                await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref()))
            assert lines(caplog, "reads") == []
    assert [line["count"] for line in lines(caplog, "reads")] == [1]


async def test_the_background_flush_writes_summed_reads_each_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access = AccessLog(interval_s=0.0)
    access.read(READER, f"{SERVICE}/GetReplicas", 0.002)
    access.read(READER, f"{SERVICE}/GetReplicas", 0.001)
    with caplog.at_level(logging.INFO, logger="replicant.access"):
        task = asyncio.create_task(access.run())
        for _ in range(100):  # bounded: an interval of 0 flushes on the next loop turn
            if lines(caplog, "reads"):
                break
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    record = next(r for r in caplog.records if r.getMessage() == "reads")
    assert (record.count, record.total_ms, record.max_ms) == (2, 3.0, 2.0)  # type: ignore[attr-defined]

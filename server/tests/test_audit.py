"""The audit trail over real mTLS: one line at once for every call, with the identity."""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from replicant.v1 import replicant_pb2 as pb
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
            written = lines(caplog, "rpc")
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


async def test_successful_reads_are_one_line_each_with_the_identity(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="replicant.access"):
        async with harness.channel("reader") as chan:
            for _ in range(3):
                await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=ref()))
            await stub(chan).ListDeployments(pb.ListDeploymentsRequest())
    get = {"identity": READER, "method": f"{SERVICE}/GetReplicas", "code": "OK", "count": None}
    listed = {**get, "method": f"{SERVICE}/ListDeployments"}
    assert lines(caplog, "rpc") == [get, get, get, listed]

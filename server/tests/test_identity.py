"""The caller is exactly who its certificate names: crafted certificates against the real server.

Each certificate below is signed by a CA the server trusts (unless the case says otherwise), so
the TLS handshake accepts it and only server/identity.py stands between it and the writer role.
"""

from __future__ import annotations

import json
import logging
import shutil
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import (  # type: ignore[import-untyped]
    reflection_pb2,
    reflection_pb2_grpc,
)
from prometheus_client import generate_latest

from replicant.v1 import replicant_pb2 as pb
from server.tests import certs
from server.tests.conftest import WRITER, channel, started, stub
from tools import exposition

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from kube.tests.fakes import FakeKube
    from server.tests.conftest import Harness

pytestmark = pytest.mark.asyncio

DNS_WRITER = "dns-writer.acc.test"
SET = pb.SetReplicasRequest(ref=pb.DeploymentRef(namespace="apps", name="api"), replicas=7)
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE  # the handshake failed: no call happened


@pytest.fixture
def crafted(pki: Path, tmp_path: Path) -> Path:
    """A copy of the session PKI plus the crafted client certificates."""
    for name in ("ca.crt", "ca.key", "client-ca.crt", "client-ca.key", "server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    cases: dict[str, dict[str, object]] = {
        "good-uri": {"uris": [WRITER]},
        "good-dns": {"dns": [DNS_WRITER]},
        "two-uris-and-dns": {"uris": [WRITER, "spiffe://replicant.dev/x"], "dns": ["a.example"]},
        "nul-uri": {"uris": [f"{WRITER}\x00.evil"]},
        "nul-dns": {"dns": [f"{DNS_WRITER}\x00.evil.example"]},
        "nul-second-uri": {"uris": [WRITER, "spiffe://replicant.dev/x\x00y"]},
        "control-char": {"uris": [f"{WRITER}\x1b[2K"]},
        "newline": {"dns": [f"{DNS_WRITER}\nx"]},
        "space": {"uris": [f"{WRITER} x"]},
        "non-ascii": {"dns": ["dns-writer.acc.tést"]},
        "no-san": {},
        "cn-only": {"cn": WRITER},
        "no-eku": {"uris": [WRITER], "usages": None},
        "server-auth-only": {"uris": [WRITER], "usages": certs.SERVER_AUTH},
        "from-server-ca": {"uris": [WRITER], "ca": "ca"},
        "ca-as-client": {
            "uris": [WRITER],
            "is_ca": True,
            "cn": "rogue-ca",
        },  # a CA, from the client CA
        "via-intermediate": {"uris": [WRITER], "ca": "ca-as-client"},  # signed by that CA
    }
    for name, options in cases.items():
        certs.issue(tmp_path, tmp_path, name, **options)  # type: ignore[arg-type]
    # The client sends the intermediate with its leaf, so the handshake can build the chain.
    with (tmp_path / "via-intermediate.crt").open("ab") as chain:
        chain.write((tmp_path / "ca-as-client.crt").read_bytes())
    return tmp_path


@pytest_asyncio.fixture
async def writer_app(crafted: Path, kube: FakeKube) -> AsyncIterator[Harness]:
    async with started(crafted, kube, writers=frozenset({WRITER, DNS_WRITER})) as running:
        await running.wait_ready()
        yield running


async def set_code(pki: Path, port: int, who: str, ca: str = "ca.crt") -> grpc.StatusCode:
    async with channel(pki, port, who, ca) as chan:
        try:
            await stub(chan).SetReplicas(SET, timeout=5)
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("good-uri", grpc.StatusCode.OK),
        ("good-dns", grpc.StatusCode.OK),
        ("two-uris-and-dns", grpc.StatusCode.OK),
        ("nul-uri", UNAUTHENTICATED),
        ("nul-dns", UNAUTHENTICATED),
        ("nul-second-uri", UNAUTHENTICATED),
        ("control-char", UNAUTHENTICATED),
        ("newline", UNAUTHENTICATED),
        ("space", UNAUTHENTICATED),
        ("non-ascii", UNAUTHENTICATED),
        ("no-san", UNAUTHENTICATED),
        ("cn-only", UNAUTHENTICATED),
        ("no-eku", UNAUTHENTICATED),  # BoringSSL accepts a leaf without EKU; replicant does not
        ("server-auth-only", UNAVAILABLE),  # BoringSSL: "unsupported certificate purpose"
        ("from-server-ca", UNAVAILABLE),
        ("ca-as-client", UNAUTHENTICATED),  # only leaf certificates are callers
        ("via-intermediate", UNAUTHENTICATED),  # accepted by the handshake, not by replicant
        ("server", UNAVAILABLE),  # the server's own certificate: from the server CA
    ],
)
async def test_only_the_exact_certificate_name_is_an_identity(
    writer_app: Harness,
    crafted: Path,
    caplog: pytest.LogCaptureFixture,
    who: str,
    expected: grpc.StatusCode,
) -> None:
    with caplog.at_level(logging.INFO, logger="replicant.access"):
        code = await set_code(crafted, writer_app.app.grpc_port, who)
    assert code == expected
    logged = {getattr(r, "identity", None) for r in caplog.records if r.name == "replicant.access"}
    if expected == grpc.StatusCode.OK:
        # The ReplicaTarget the API server stores names the caller.
        named = {DNS_WRITER if who == "good-dns" else WRITER}
        assert logged == set(writer_app.requested_by()) == named
    else:
        assert writer_app.kube.writes == []
        assert logged <= {""}  # a refused caller is logged without a name


async def test_server_certificate_is_no_client_even_when_both_share_a_ca(
    crafted: Path, kube: FakeKube
) -> None:
    # The chart's old layout: one CA for servers and clients. BoringSSL refuses a serverAuth-only
    # leaf; a server certificate issued without any EKU (cert-manager's default usages) passes the
    # handshake and is refused by replicant.
    certs.issue(crafted, crafted, "server-no-eku", ca="ca", dns=["localhost"], usages=None)
    async with started(
        crafted, kube, ca=crafted / "ca.crt", writers=frozenset({"localhost", WRITER})
    ) as app:
        await app.wait_ready()
        server_cert = await set_code(crafted, app.app.grpc_port, "server")
        server_no_eku = await set_code(crafted, app.app.grpc_port, "server-no-eku")
        server_ca_client = await set_code(crafted, app.app.grpc_port, "from-server-ca")
    assert server_cert == UNAVAILABLE
    assert server_no_eku == UNAUTHENTICATED
    assert server_ca_client == grpc.StatusCode.OK  # accepted, and written to the API server


async def test_refused_certificates_are_counted_and_logged_once_per_reason(
    writer_app: Harness, crafted: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = writer_app
    with caplog.at_level(logging.WARNING, logger="replicant.security"):
        for _ in range(3):
            await set_code(crafted, app.app.grpc_port, "nul-uri")
    metrics = generate_latest(app.app.registry).decode()
    warnings = [r for r in caplog.records if r.name == "replicant.security"]
    refusals = exposition.sample(metrics, "replicant_client_refusals_total", reason="bad_character")
    assert refusals == 3
    assert [getattr(r, "reason", None) for r in warnings] == ["bad_character"]
    assert "\x00" not in json.dumps([r.__dict__ for r in warnings], default=str)


async def _health_check(chan: grpc.aio.Channel) -> None:
    await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=5)


async def _health_watch(chan: grpc.aio.Channel) -> None:
    async for _ in health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest()):
        return


async def _reflection(chan: grpc.aio.Channel) -> None:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for _ in reflection_pb2_grpc.ServerReflectionStub(chan).ServerReflectionInfo(
        iter([request])
    ):
        return


async def _get(chan: grpc.aio.Channel) -> None:
    await stub(chan).GetReplicas(pb.GetReplicasRequest(ref=SET.ref), timeout=5)


async def _list(chan: grpc.aio.Channel) -> None:
    await stub(chan).ListDeployments(pb.ListDeploymentsRequest(), timeout=5)


async def _set(chan: grpc.aio.Channel) -> None:
    await stub(chan).SetReplicas(SET, timeout=5)


# Every method the server serves: the checks come from wrapping each service as it is added
# (server/interceptor.py Registry), so a service added any other way would fail here.
SERVED = [_health_check, _health_watch, _reflection, _get, _list, _set]


@pytest.mark.parametrize("call", SERVED, ids=lambda call: call.__name__.lstrip("_"))
async def test_every_served_method_refuses_a_certificate_without_an_identity(
    writer_app: Harness, crafted: Path, call: Any
) -> None:
    async with channel(crafted, writer_app.app.grpc_port, "no-eku") as chan:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(chan)
    assert err.value.code() == UNAUTHENTICATED
    assert writer_app.kube.writes == []

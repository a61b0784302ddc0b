"""Fixtures for the server's unit tests: dev PKI, a fake API server, a running app, leak checks."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio

from kube.desired import desired_state_view
from kube.replicatargets import REQUESTED_BY, parse_replica_target
from kube.tests.fakes import FakeKube, deployment
from replicant.v1 import replicant_pb2_grpc
from server import tls
from server.app import App
from server.config import Config
from tools import devcerts

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from kube.client import JSONObject
    from kube.informer import Key
    from kube.probe import ApiServerProbe
    from kube.views import DesiredStateView


@pytest_asyncio.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)  # let cancelled tasks finish unwinding
    leaked = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()}
    assert not leaked, f"test leaked asyncio tasks: {leaked}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    devcerts.generate(out)
    return out


READER = devcerts.READER_ID
WRITER = devcerts.WRITER_ID
DEPLOYMENTS = "/apis/apps/v1/deployments"
# The app watches all namespaces; the fake API server keeps every ReplicaTarget here.
TARGETS = "/apis/replicant.dev/v1alpha1/replicatargets"


def make_config(pki: Path, **overrides: object) -> Config:
    values: dict[str, object] = {
        "grpc_port": 0,
        "http_port": 0,
        "tls_cert_file": str(pki / "server.crt"),
        "tls_key_file": str(pki / "server.key"),
        "client_ca_file": str(pki / "client-ca.crt"),
        "readers": frozenset({READER}),
        "writers": frozenset({WRITER}),
        "namespaces": (),
        "kubeconfig": None,
        "leader_election_namespace": "default",
        "identity": "test",
    }
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


def channel(pki: Path, port: int, who: str = "reader", ca: str = "ca.crt") -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        (pki / ca).read_bytes(),
        (pki / f"{who}.key").read_bytes(),
        (pki / f"{who}.crt").read_bytes(),
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", creds)


def stub(chan: grpc.aio.Channel) -> replicant_pb2_grpc.ReplicaServiceAsyncStub:
    return replicant_pb2_grpc.ReplicaServiceStub(chan)


@dataclass
class Harness:
    app: App
    kube: FakeKube
    pki: Path

    def target(self, namespace: str, name: str) -> JSONObject | None:
        """The ReplicaTarget as the fake API server stores it."""
        for obj in self.kube.objects.get(TARGETS, []):
            if (obj["metadata"]["namespace"], obj["metadata"]["name"]) == (namespace, name):
                return obj
        return None

    def desired(self, key: Key) -> DesiredStateView | None:
        """What the API should show as desired, straight from the stored object (an oracle)."""
        stored = self.target(*key)
        return None if stored is None else desired_state_view(parse_replica_target(stored))

    def requested_by(self) -> list[str]:
        """Who each stored ReplicaTarget names as having asked for it."""
        return [
            obj["metadata"]["annotations"][REQUESTED_BY]
            for obj in self.kube.objects.get(TARGETS, [])
        ]

    def channel(self, who: str = "reader") -> grpc.aio.Channel:
        return channel(self.pki, self.app.grpc_port, who)

    async def wait_ready(self) -> None:
        for _ in range(500):  # bounded: the fake answers at once
            synced = all(informer.synced for informer in self.app.informers)
            if synced and self.app.readiness.ready and not self.app.readiness.write_reason():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"never ready: {self.app.readiness.reason()}")


@contextlib.asynccontextmanager
async def started(
    pki: Path,
    kube: FakeKube,
    *,
    probe: ApiServerProbe | None = None,
    **config: Any,
) -> AsyncIterator[Harness]:
    files = tls.CertificateFiles(
        str(config.pop("cert", pki / "server.crt")),
        str(config.pop("key", pki / "server.key")),
        str(config.pop("ca", pki / "client-ca.crt")),
    )
    app = App(
        make_config(pki, **config),
        kube,
        credentials=tls.server_credentials(files),
        client_cas=lambda: files.client_cas,
        probe=probe,
    )
    await app.start()
    try:
        yield Harness(app, kube, pki)
    finally:
        await app.stop()


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    fake.objects[DEPLOYMENTS] = [
        deployment("apps", "api", replicas=3, ready=2),
        deployment("apps", "web", replicas=2, ready=2),
        deployment("batch", "jobs", replicas=0),
        deployment("batch", "reports", replicas=1, ready=1),
        deployment("tools", "grafana", replicas=1),
    ]
    return fake


@pytest_asyncio.fixture
async def harness(pki: Path, kube: FakeKube) -> AsyncIterator[Harness]:
    async with started(pki, kube) as running:
        await running.wait_ready()
        yield running

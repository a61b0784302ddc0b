"""Mutual TLS: who may connect, which protocol versions and suites, and certificate reload."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import warnings
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from replicant.v1 import replicant_pb2 as pb
from server import tls
from server.errors import UnauthenticatedError
from server.interceptor import _check_transport
from server.tests import certs
from server.tests.conftest import Harness, channel, started, stub
from tools import devcerts

if TYPE_CHECKING:
    from pathlib import Path

    from kube.tests.fakes import FakeKube

pytestmark = pytest.mark.asyncio

REQUEST = pb.GetReplicasRequest(ref=pb.DeploymentRef(namespace="apps", name="api"))


async def code_with(chan: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await stub(chan).GetReplicas(REQUEST, timeout=5)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def test_client_without_certificate_cannot_connect(harness: Harness, pki: Path) -> None:
    creds = grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{harness.app.grpc_port}", creds) as chan:
        assert await code_with(chan) == grpc.StatusCode.UNAVAILABLE


async def test_client_certificate_from_another_ca_cannot_connect(harness: Harness) -> None:
    async with harness.channel("untrusted") as chan:
        assert await code_with(chan) == grpc.StatusCode.UNAVAILABLE


async def test_client_certificate_from_the_ca_can_call(harness: Harness) -> None:
    async with harness.channel("reader") as chan:
        assert await code_with(chan) == grpc.StatusCode.OK


def _handshake(port: int, context: ssl.SSLContext) -> str | None:
    """The negotiated TLS version, or None if the server refused the handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls_socket:
                return tls_socket.version()
        except (ssl.SSLError, ConnectionError):
            return None


@pytest.mark.parametrize(
    ("version", "ciphers", "accepted"),
    [
        (ssl.TLSVersion.TLSv1_3, None, True),
        # In grpc's default list: refused only because CIPHER_SUITES took effect.
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", False),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384", False),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", False),
        # The suites the list allows cannot match the server's ECDSA key.
        (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256", False),
        (ssl.TLSVersion.TLSv1_2, "DEFAULT", False),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256", False),  # CBC
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA", False),  # CBC
        (ssl.TLSVersion.TLSv1_2, "AES128-GCM-SHA256", False),  # no forward secrecy
        (ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0", False),
    ],
)
async def test_tls_handshake_policy(
    harness: Harness, pki: Path, version: ssl.TLSVersion, ciphers: str | None, accepted: bool
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki / "ca.crt")
    context.load_cert_chain(pki / "reader.crt", pki / "reader.key")
    context.set_alpn_protocols(["h2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: the point
        context.minimum_version = context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers)
    negotiated = await asyncio.to_thread(_handshake, harness.app.grpc_port, context)
    assert negotiated == ("TLSv1.3" if accepted else None)


@pytest.mark.parametrize(
    ("version", "allowed"), [(b"TLSv1.3", True), (b"TLSv1.2", False), (None, False)]
)
async def test_rpcs_require_tls_13(version: bytes | None, allowed: bool) -> None:
    auth = {"ssl_tls_version": [version]} if version else {}
    if allowed:
        _check_transport(auth)
    else:
        with pytest.raises(UnauthenticatedError):
            _check_transport(auth)


async def test_dns_san_identity_is_recognised(pki: Path, kube: FakeKube, tmp_path: Path) -> None:
    for name in ("ca.crt", "client-ca.crt", "client-ca.key", "server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    certs.issue(tmp_path, tmp_path, "ops", cn="ops", dns=["ops.example", "x.example"])
    async with started(tmp_path, kube, readers=frozenset({"ops.example"})) as app:
        await app.wait_ready()
        async with channel(tmp_path, app.app.grpc_port, "ops") as chan:
            assert await code_with(chan) == grpc.StatusCode.OK


async def test_certificates_reload_without_restart_and_survive_a_broken_file(
    pki: Path, kube: FakeKube, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    for name in ("client-ca.crt", "server.crt", "server.key"):
        shutil.copy(pki / name, live / name)
    rotated = tmp_path_factory.mktemp("rotated")
    devcerts.generate(rotated)
    async with started(
        pki, kube, cert=live / "server.crt", key=live / "server.key", ca=live / "client-ca.crt"
    ) as app:
        await app.wait_ready()
        port = app.app.grpc_port
        async with channel(pki, port, "reader") as chan:
            before = await code_with(chan)
        # A half-written file: the server keeps the last good configuration.
        (live / "server.key").write_text("garbage")
        async with channel(pki, port, "reader") as chan:
            during = await code_with(chan)
        for name in ("client-ca.crt", "server.crt", "server.key"):
            shutil.copy(rotated / name, live / name)
        async with channel(rotated, port, "reader") as chan:
            new_pki = await code_with(chan)
        async with channel(pki, port, "reader") as chan:
            old_pki = await code_with(chan)
    assert (before, during, new_pki) == (grpc.StatusCode.OK,) * 3
    assert old_pki == grpc.StatusCode.UNAVAILABLE


async def test_certificate_write_that_finishes_during_a_failed_load_is_picked_up(
    pki: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("client-ca.crt", "server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    rotated = tmp_path_factory.mktemp("rotated-mid-write")
    devcerts.generate(rotated)
    files = tls.CertificateFiles(
        str(tmp_path / "server.crt"), str(tmp_path / "server.key"), str(tmp_path / "client-ca.crt")
    )
    files.load()
    (tmp_path / "server.key").write_text("half a key")  # the writer has started

    def load_while_the_writer_finishes() -> grpc.ServerCertificateConfiguration:
        for name in ("client-ca.crt", "server.crt", "server.key"):
            shutil.copy(rotated / name, tmp_path / name)
        raise OSError("certificate files changed while loading")

    with monkeypatch.context() as patched:
        patched.setattr(files, "load", load_while_the_writer_finishes)
        during_write = files.fetch()
    after_write = files.fetch()
    assert during_write is None
    assert after_write is not None


def _first_flight(port: int, context: ssl.SSLContext) -> tuple[bytes, bytes]:
    """What a TLS client sends and receives until the server answers its first flight."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    sent, received = b"", b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        for _ in range(4):  # bounded: ClientHello, then whatever the server answers
            try:
                tls_object.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, ConnectionError):
                break
            data = outgoing.read()
            sent += data
            raw.sendall(data)
            chunk = raw.recv(65536)
            if not chunk:
                break
            received += chunk
            incoming.write(chunk)
    return sent, received


async def test_tls_12_is_refused_before_the_client_certificate_is_asked_for(
    harness: Harness, pki: Path
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki / "ca.crt")
    context.load_cert_chain(pki / "reader.crt", pki / "reader.key")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    sent, received = await asyncio.to_thread(_first_flight, harness.app.grpc_port, context)
    # The client sent one record, its ClientHello (handshake type 1), and never a Certificate;
    # the server answered with no handshake record at all (no ServerHello, no CertificateRequest).
    assert (sent[0], sent[5]) == (0x16, 0x01)
    assert len(sent) == 5 + int.from_bytes(sent[3:5], "big")
    assert received[:1] in (b"", b"\x15")  # nothing, or an alert


async def test_server_with_an_rsa_key_refuses_to_start_and_to_reload_one(
    pki: Path, tmp_path: Path
) -> None:
    for name in ("ca.crt", "ca.key", "client-ca.crt", "server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    certs.issue(tmp_path, tmp_path, "rsa", ca="ca", dns=["localhost"], usages=certs.SERVER_AUTH,
                rsa_key=True)  # fmt: skip
    with pytest.raises(ValueError, match="must be ECDSA"):
        tls.CertificateFiles(
            str(tmp_path / "rsa.crt"), str(tmp_path / "rsa.key"), str(tmp_path / "client-ca.crt")
        ).load()
    files = tls.CertificateFiles(
        str(tmp_path / "server.crt"), str(tmp_path / "server.key"), str(tmp_path / "client-ca.crt")
    )
    files.load()
    shutil.copy(tmp_path / "rsa.crt", tmp_path / "server.crt")
    shutil.copy(tmp_path / "rsa.key", tmp_path / "server.key")
    assert files.fetch() is None  # the last good (ECDSA) configuration stays


@pytest.mark.parametrize(("client_ca", "warned"), [("ca.crt", True), ("client-ca.crt", False)])
async def test_a_client_ca_that_issued_the_server_certificate_is_warned_about(
    pki: Path, caplog: pytest.LogCaptureFixture, client_ca: str, warned: bool
) -> None:
    files = tls.CertificateFiles(
        str(pki / "server.crt"), str(pki / "server.key"), str(pki / client_ca)
    )
    files.load()
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and r.name == tls.log.name]
    assert bool(warnings) == warned


async def test_one_connection_holds_at_most_max_concurrent_streams(harness: Harness) -> None:
    from grpc_reflection.v1alpha import (  # type: ignore[import-untyped]
        reflection_pb2,
        reflection_pb2_grpc,
    )

    from server.app import MAX_CONCURRENT_STREAMS

    ask = reflection_pb2.ServerReflectionRequest(list_services="")

    async def answered(call: Any) -> Any:
        await call.write(ask)
        return await call.read()

    async with harness.channel("nobody") as chan:  # no role needed: reflection only
        reflection = reflection_pb2_grpc.ServerReflectionStub(chan)
        calls: list[Any] = []
        async with asyncio.timeout(30):  # bounded, whatever happens
            for _ in range(MAX_CONCURRENT_STREAMS):  # every stream up to the bound is answered
                calls.append(reflection.ServerReflectionInfo())
                await answered(calls[-1])
            calls.append(reflection.ServerReflectionInfo())
            extra = asyncio.ensure_future(answered(calls[-1]))
            done, _ = await asyncio.wait([extra], timeout=1.0)
            assert not done  # the server has not opened the stream over the bound
            await calls[0].done_writing()  # one stream ends: the waiting one is opened
            answer = await extra
            for call in calls[1:]:
                await call.done_writing()
            codes = {await call.code() for call in calls}
    assert codes == {grpc.StatusCode.OK}
    assert answer.list_services_response.service

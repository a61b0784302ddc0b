"""The watch stream's line splitting, decoding and closing; which libraries importing kube loads."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import ssl
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kube.client import MAX_EVENT_BYTES, _lines, connect
from kube.errors import ApiUnavailableError, KubeError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


class Chunks:
    """What aiohttp's StreamReader.iter_any() gives: bytes as they arrived, then maybe an error."""

    def __init__(self, *chunks: bytes, error: BaseException | None = None) -> None:
        self._chunks = chunks
        self._error = error

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._error is not None:
            raise self._error


async def decoded(content: Chunks) -> list[Any]:
    return [event async for event in _lines(content)]  # type: ignore[arg-type]


def event(n: int) -> bytes:
    return json.dumps({"type": "ADDED", "object": {"n": n}}).encode() + b"\n"


@pytest.mark.asyncio
async def test_lines_split_across_chunks_and_several_in_one_chunk_are_decoded_in_order() -> None:
    stream = event(0) + event(1) + event(2) + event(3)
    chunks = Chunks(stream[:5], stream[5:7], stream[7:60], stream[60:])
    assert [e["object"]["n"] for e in await decoded(chunks)] == [0, 1, 2, 3]


@pytest.mark.asyncio
async def test_blank_lines_are_skipped_and_a_last_line_without_newline_is_kept() -> None:
    chunks = Chunks(b"\n" + event(0) + b"  \n", event(1).rstrip(b"\n"))
    assert [e["object"]["n"] for e in await decoded(chunks)] == [0, 1]


@pytest.mark.asyncio
@pytest.mark.parametrize("line", [b"{not json\n", b"[1, 2]\n"], ids=["invalid", "not-object"])
async def test_a_line_that_is_not_a_json_object_fails_the_stream(line: bytes) -> None:
    with pytest.raises(KubeError):
        await decoded(Chunks(event(0), line, event(1)))


@pytest.mark.asyncio
async def test_a_line_that_never_ends_fails_the_stream_instead_of_filling_memory() -> None:
    chunk = b"x" * 2**20
    chunks = Chunks(*([chunk] * (MAX_EVENT_BYTES // len(chunk) + 2)))
    with pytest.raises(KubeError, match="longer than"):
        await decoded(chunks)


@pytest.mark.asyncio
async def test_a_connection_error_mid_stream_is_mapped_to_api_unavailable() -> None:
    chunks = Chunks(event(0), error=aiohttp.ClientPayloadError("connection reset"))
    with pytest.raises(ApiUnavailableError):
        await decoded(chunks)


def self_signed_127(out: Path) -> None:
    """out/tls.crt and out/tls.key: a certificate for 127.0.0.1 that is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (out / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.asyncio
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc (Linux)")
async def test_leaving_a_watch_closes_its_socket_even_if_the_server_never_answers_the_tls_close(
    tmp_path: Path,
) -> None:
    # A TLS close waits for the peer's close_notify; this server never reads again, so it never
    # answers. Leaving the stream must still close the client's socket at once: a loop that ends
    # first (process exit, a test) would otherwise leak it (ResourceWarning: unclosed transport).
    self_signed_127(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    held: list[asyncio.StreamWriter] = []

    async def answer_one_event_then_stop_reading(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        line = event(0)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        writer.write(head + f"{len(line):x}\r\n".encode() + line + b"\r\n")
        writer.transport.pause_reading()  # type: ignore[attr-defined]
        held.append(writer)

    server = await asyncio.start_server(answer_one_event_then_stop_reading, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": f"https://127.0.0.1:{port}",
                            "certificate-authority": str(tmp_path / "tls.crt"),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    api = await connect(str(kubeconfig))
    before = len(os.listdir("/proc/self/fd"))
    try:
        async with api.stream("/api/v1/pods", query={"watch": "true"}, read_timeout=5) as events:
            assert await anext(events) == json.loads(event(0))
        await api.close()
        await asyncio.sleep(0)  # the one loop turn an aborted transport takes to close its socket
        # Only the server's end is still open (held on purpose): the client's socket is closed.
        assert len(os.listdir("/proc/self/fd")) == before + 1
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()

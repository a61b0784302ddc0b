"""The watch stream's line splitting and decoding, and which libraries importing kube loads."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from kube.client import MAX_EVENT_BYTES, _lines
from kube.errors import ApiUnavailableError, KubeError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


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

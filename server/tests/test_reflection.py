"""Server reflection resolves the services and messages grpcurl asks for (grpcio-reflection's own
servicer: method names are not symbols it resolves, see server/app.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import (  # type: ignore[import-untyped]
    reflection_pb2,
    reflection_pb2_grpc,
)

from replicant.v1 import replicant_pb2

if TYPE_CHECKING:
    from collections.abc import Iterator

    from google.protobuf.descriptor import Descriptor, FileDescriptor

    from server.tests.conftest import Harness

pytestmark = pytest.mark.asyncio

SERVED_FILES: tuple[FileDescriptor, ...] = (
    replicant_pb2.DESCRIPTOR,
    health_pb2.DESCRIPTOR,
    reflection_pb2.DESCRIPTOR,
)


def _messages(message: Descriptor) -> Iterator[str]:
    yield message.full_name
    for nested in message.nested_types:
        yield from _messages(nested)


def served_symbols() -> Iterator[tuple[str, str]]:
    """(symbol, file that defines it) for every service and message served."""
    for file in SERVED_FILES:
        for service in file.services_by_name.values():
            yield service.full_name, file.name
        for message in file.message_types_by_name.values():
            for name in _messages(message):
                yield name, file.name


async def test_every_served_symbol_resolves_to_its_file(harness: Harness) -> None:
    symbols = dict(served_symbols())
    assert "replicant.v1.ReplicaService" in symbols
    assert "grpc.health.v1.Health" in symbols
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol) for symbol in symbols
    ]
    async with harness.channel("nobody") as chan:  # reflection needs only a valid certificate
        call = reflection_pb2_grpc.ServerReflectionStub(chan).ServerReflectionInfo(
            iter(requests), timeout=10
        )
        answers = [answer async for answer in call]
    resolved: dict[str, str] = {}
    for answer in answers:
        assert not answer.HasField("error_response"), answer.original_request
        first = descriptor_pb2.FileDescriptorProto.FromString(
            answer.file_descriptor_response.file_descriptor_proto[0]
        )
        resolved[answer.original_request.file_containing_symbol] = first.name
    assert resolved == symbols


@pytest.mark.parametrize(
    "symbol",
    ["replicant.v1.ReplicaService.Nope", "replicant.v1.Nope.GetReplicas", "Nope", ""],
)
async def test_unknown_symbols_are_not_found(harness: Harness, symbol: str) -> None:
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
    async with harness.channel("nobody") as chan:
        call = reflection_pb2_grpc.ServerReflectionStub(chan).ServerReflectionInfo(
            iter([request]), timeout=10
        )
        answers = [answer async for answer in call]
    assert [a.error_response.error_code for a in answers] == [5]  # NOT_FOUND

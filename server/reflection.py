"""Server reflection (requirement: usable with grpcurl) that also resolves method names
(grpcurl `describe Service.Method`).

grpcio-reflection answers FileContainingSymbol through the descriptor pool, and the upb pool
behind protobuf's Python API finds services, messages, fields and enums but not methods
(grpc/grpc#34743), so `grpcurl describe pkg.Service.Method` said "Symbol not found". The fix is
a pool that falls back from `pkg.Service.Method` to the file of `pkg.Service` when that service
has the method; everything else is the library's own servicer, given that pool.
TODO: drop this module once grpcio-reflection resolves method names itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import (  # type: ignore[import-untyped]
    reflection,
    reflection_pb2_grpc,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import grpc
    from google.protobuf.descriptor import FileDescriptor

SERVICE_NAME: str = reflection.SERVICE_NAME


class MethodAwarePool:
    """The default descriptor pool, with method names resolvable as symbols."""

    def __init__(self, pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._pool = pool or descriptor_pool.Default()

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:  # noqa: N802 - pool API
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service_name, _, method = symbol.rpartition(".")
            try:
                service = self._pool.FindServiceByName(service_name)
            except KeyError:
                service = None
            if service is None or method not in service.methods_by_name:
                raise
            return service.file

    def __getattr__(self, name: str) -> Any:
        # Every other lookup the servicer makes (by file name, extensions) is the pool's own.
        return getattr(self._pool, name)


def enable(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve grpc.reflection.v1alpha for `service_names` (and reflection itself) on `server`."""
    # The aio servicer by name: `enable_server_reflection` picks it only for a grpc.aio.Server.
    servicer = reflection.aio.ReflectionServicer(tuple(service_names), pool=MethodAwarePool())
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)

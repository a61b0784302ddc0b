"""The server interceptor: transport policy, authorization, error mapping, metrics and access logs.

grpc.aio server interceptors only see the method name, not the call context, so this one wraps the
method handler: the wrapper runs with the context, checks the negotiated TLS version (grpc 1.85
reports it in the auth context as `ssl_tls_version`) and the client certificate's identity
(server/identity.py; refusals are counted and logged, rate-limited), authorizes the caller before
the servicer runs (so a caller without a role gets PERMISSION_DENIED before any validation or
lookup) and hands it to the servicer in `authz.current_caller`, maps any exception the servicer
raises via server/status.py, and records one access-log line and metrics per ReplicaService call.
Health and reflection get the TLS and certificate checks only.

Request bytes that do not decode reach the wrapper as `_UNDECODABLE` instead of failing inside
grpc, which would answer UNKNOWN with the library's exception text; every method answers them
INVALID_ARGUMENT (ReplicaService after authorization, like any other invalid request).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from server import authz
from server.errors import IdentityRefusedError, InvalidArgumentError, UnauthenticatedError
from server.logs import RateLimiter
from server.status import INTERNAL, to_status

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from server.identity import IdentityReader
    from server.metrics import Metrics

log = logging.getLogger("replicant.access")
security_log = logging.getLogger("replicant.security")

Behavior = Any  # grpc's handler behaviours are untyped callables

_UNDECODABLE = object()  # stands in for a request whose bytes did not decode
_MALFORMED = InvalidArgumentError("malformed request: the message cannot be decoded")


class ApiInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, policy: authz.Policy, identities: IdentityReader, metrics: Metrics) -> None:
        self._policy = policy
        self._identities = identities
        self._metrics = metrics
        self._refusal_log = RateLimiter()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(method, handler.stream_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no stream-unary methods are served

    def _wrap_unary(self, method: str, inner: Behavior) -> Behavior:
        audited = method in authz.METHOD_ROLES

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            code, who = grpc.StatusCode.OK, None
            try:
                caller = self._caller(method, context)
                who = caller.identity
                self._policy.authorize(method, caller)
                if request is _UNDECODABLE:
                    raise _MALFORMED
                token = authz.current_caller.set(caller)
                try:
                    return await inner(request, context)
                finally:
                    authz.current_caller.reset(token)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                if _is_abort(exc):  # the servicer aborted itself (e.g. health NOT_FOUND)
                    code = _code(context)
                    raise
                code, message = to_status(exc)
                if (code, message) == INTERNAL:
                    log.exception("internal error", extra={"method": method, "identity": who})
                await context.abort(code, message)
            finally:
                if audited:
                    self._record(method, who, code, time.perf_counter() - start)

        return behavior

    def _wrap_stream(self, method: str, inner: Behavior) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            try:
                self._caller(method, context)
            except UnauthenticatedError as exc:
                await context.abort(*to_status(exc))
            if request is _UNDECODABLE:
                await context.abort(*to_status(_MALFORMED))
            if isinstance(request, AsyncIterable):  # stream-stream: check each message
                request = _decoded(request, context)
            result = inner(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    await context.write(item)
            else:
                await result

        return behavior

    def _caller(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> authz.Caller:
        """The accepted caller of this call; raises UnauthenticatedError (counted and logged)."""
        auth = context.auth_context()
        _check_transport(auth)
        try:
            return self._policy.caller(self._identities.identity(auth))
        except IdentityRefusedError as exc:
            self._metrics.observe_refusal("call", exc.reason)
            suppressed = self._refusal_log.allow(exc.reason)
            if suppressed is not None:
                security_log.warning(
                    "client certificate refused",
                    extra={
                        "reason": exc.reason,
                        "method": method,
                        "peer": context.peer(),
                        "suppressed": suppressed,
                    },
                )
            raise

    def _record(self, method: str, who: str | None, code: grpc.StatusCode, seconds: float) -> None:
        self._metrics.observe_rpc(method.lstrip("/"), code.name, seconds)
        log.info(
            "rpc",
            extra={
                "identity": who or "",
                "method": method,
                "code": code.name,
                "duration_ms": round(seconds * 1000, 3),
            },
        )


def _tolerant(deserializer: Behavior) -> Behavior:
    if deserializer is None:
        return None

    def tolerant(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return _UNDECODABLE

    return tolerant


async def _decoded(
    requests: AsyncIterable[Any], context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[Any]:
    async for request in requests:
        if request is _UNDECODABLE:
            await context.abort(*to_status(_MALFORMED))
        yield request


def _check_transport(auth: authz.AuthContext) -> None:
    version = authz.tls_version(auth)
    if version not in authz.ALLOWED_TLS_VERSIONS:
        raise UnauthenticatedError(f"TLS 1.3 required (negotiated {version or 'unknown'})")


def _code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    code: grpc.StatusCode | None = context.code()  # None until the handler sets one
    return code or grpc.StatusCode.UNKNOWN


def _is_abort(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AbortError)

"""The interceptor: transport policy, authorization, error mapping, metrics and the audit trail.

It wraps every method handler once, when a service is added to the server (`Registry`), instead of
being a grpc.aio.ServerInterceptor: those run as coroutines on every call and rebuild the handler
each time, which cost a read more CPU than everything else replicant does for it. Every service is
added through the Registry (server/app.py), and ReplicaService's methods take the caller, not grpc's
context (server/servicer.py), so they cannot be served unwrapped.

On every call the wrapper checks the negotiated TLS version (grpc 1.85 reports it in the auth
context as `ssl_tls_version`) and the client certificate's identity (server/identity.py; refusals
are counted and logged, rate-limited), authorizes the caller before the servicer runs (so a caller
without a role gets PERMISSION_DENIED before any validation or lookup) and passes it to the
servicer, maps any exception the servicer raises via server/status.py, and counts each
ReplicaService call in the metrics and the audit trail (server/audit.py). ReplicaService reads are
plain functions, called without a coroutine of their own. Health and reflection get the TLS and
certificate checks only.

Request bytes that do not decode reach the wrapper as `_UNDECODABLE` instead of failing inside
grpc, which would answer UNKNOWN with the library's exception text; every method answers them
INVALID_ARGUMENT (ReplicaService after authorization, like any other invalid request).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any, Final

import grpc
from google.protobuf.message import DecodeError

from server import authz
from server.errors import IdentityRefusedError, InvalidArgumentError, UnauthenticatedError
from server.logs import RateLimiter
from server.status import INTERNAL, to_status

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from server.audit import AccessLog
    from server.identity import IdentityReader
    from server.metrics import Metrics

    Handler = grpc.RpcMethodHandler[Any, Any]

log = logging.getLogger("replicant.access")
security_log = logging.getLogger("replicant.security")

Behavior = Any  # grpc's handler behaviours are untyped callables

# Callers are a function of the identity and the fixed policy; identities that get this far hold
# certificates from the client CA, so the cache stays small.
CACHED_CALLERS: Final = 1024

_UNDECODABLE = object()  # stands in for a request whose bytes did not decode
_MALFORMED = InvalidArgumentError("malformed request: the message cannot be decoded")
_OK: Final = grpc.StatusCode.OK


class ApiInterceptor:
    def __init__(
        self,
        policy: authz.Policy,
        identities: IdentityReader,
        metrics: Metrics,
        access: AccessLog,
    ) -> None:
        self._policy = policy
        self._identities = identities
        self._metrics = metrics
        self._access = access
        self._refusal_log = RateLimiter()
        self._callers = functools.lru_cache(maxsize=CACHED_CALLERS)(policy.caller)
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def registry(self, server: grpc.aio.Server) -> Registry:
        """What services are added to: it hands grpc only wrapped handlers."""
        return Registry(server, self)

    def wrap(self, method: str, handler: Handler) -> Handler:
        """The handler with every check around it; made once per method and handler."""
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._rebuild(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _rebuild(self, method: str, handler: Handler) -> Handler:
        deserializer = _tolerant(handler.request_deserializer)
        serializer = handler.response_serializer  # None for ReplicaService reads: they are bytes
        if handler.unary_unary is not None:
            wrap = self._wrap_api if method in authz.METHOD_ROLES else self._wrap_unary
            return grpc.unary_unary_rpc_method_handler(
                wrap(method, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(method, handler.stream_stream),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
        # No stream-unary methods are served; refuse rather than serve one unchecked.
        raise ValueError(f"{method}: stream-unary methods are not supported")

    def _wrap_api(self, method: str, inner: Behavior) -> Behavior:
        """A ReplicaService method: `inner(request, caller)`, awaited only if it is a coroutine."""
        label = method.lstrip("/")  # the metric's method label
        awaited = inspect.iscoroutinefunction(inner)
        writes = authz.METHOD_ROLES[method] is authz.Role.WRITER
        audit_success = self._access.call if writes else None  # reads are summed
        observe, summed = self._metrics.observe_rpc, self._access.read
        clock = time.perf_counter

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = clock()
            who = ""
            try:
                caller = self._caller(method, context)
                who = caller.identity
                self._policy.authorize(method, caller)
                if request is _UNDECODABLE:
                    raise _MALFORMED
                response = (await inner(request, caller)) if awaited else inner(request, caller)
            except asyncio.CancelledError:
                self._failed(method, label, who, grpc.StatusCode.CANCELLED, clock() - start)
                raise
            except Exception as exc:
                if _is_abort(exc):  # the servicer aborted the call itself
                    self._failed(method, label, who, _code(context), clock() - start)
                    raise
                code, message = to_status(exc)
                if (code, message) == INTERNAL:
                    log.exception("internal error", extra={"method": method, "identity": who})
                self._failed(method, label, who, code, clock() - start)
                await context.abort(code, message)
            seconds = clock() - start
            observe(label, "OK", seconds)
            if audit_success is None:
                summed(who, method, seconds)
            else:
                audit_success(who, method, _OK, seconds)
            return response

        return behavior

    def _failed(
        self, method: str, label: str, who: str, code: grpc.StatusCode, seconds: float
    ) -> None:
        self._metrics.observe_rpc(label, code.name, seconds)
        self._access.call(who, method, code, seconds)

    def _wrap_unary(self, method: str, inner: Behavior) -> Behavior:
        """Health's unary Check: an accepted certificate is enough."""

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                self._caller(method, context)
                if request is _UNDECODABLE:
                    raise _MALFORMED
                return await inner(request, context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _is_abort(exc):  # the servicer aborted itself (e.g. health NOT_FOUND)
                    raise
                code, message = to_status(exc)
                if (code, message) == INTERNAL:
                    log.exception("internal error", extra={"method": method})
                await context.abort(code, message)

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
            return self._callers(self._identities.identity(auth))
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


class Registry:
    """Stands in for the server while services are added: grpc gets only wrapped handlers.

    Generated `add_*_to_server` functions call these two methods (grpcio 1.63 and later)."""

    def __init__(self, server: grpc.aio.Server, interceptor: ApiInterceptor) -> None:
        self._server = server
        self._interceptor = interceptor

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            [_Guarded(handler, self._interceptor) for handler in handlers]
        )

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Handler]) -> None:
        wrap = self._interceptor.wrap
        self._server.add_registered_method_handlers(
            service, {name: wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        )


class _Guarded(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come out wrapped."""

    def __init__(self, inner: grpc.GenericRpcHandler, interceptor: ApiInterceptor) -> None:
        self._inner = inner
        self._interceptor = interceptor

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        return self._interceptor.wrap(handler_call_details.method, handler)


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

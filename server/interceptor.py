"""Every call's checks, in one grpc.aio.ServerInterceptor: mTLS identity, authorization, the one
error mapping, metrics and the audit trail (requirements: "mTLS with an authorization scheme",
"errors map once to the right gRPC status").

On every call: the negotiated TLS version must be 1.3 and the client certificate must name an
acceptable identity (server/identity.py); refusals are counted and logged, rate-limited. For
ReplicaService, the caller needs the method's role somewhere (server/authz.py) before validation
or lookup; the accepted caller reaches the servicer through `CALLER`, so a servicer served without
this interceptor fails every call (LookupError: INTERNAL) instead of serving unauthorized. Any
exception the servicer raises is mapped by server/status.py; every ReplicaService call is counted in
the metrics and written as one JSON "rpc" line on the "replicant.access" logger (the audit trail:
identity, method, code, duration). Health and reflection get the TLS and certificate checks only.

Request bytes that do not decode answer INVALID_ARGUMENT (grpc itself would answer INTERNAL with
its own text).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterable
from contextvars import ContextVar
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

    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger("replicant.access")
security_log = logging.getLogger("replicant.security")

Behavior = Any  # grpc's handler behaviours are untyped callables
CALLER: ContextVar[authz.Caller] = ContextVar("caller")
MALFORMED = "malformed request: the message cannot be decoded"
_UNDECODABLE = object()  # stands in for a request whose bytes did not decode


class ApiInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        policy: authz.Policy,
        identities: IdentityReader,
        metrics: Metrics,
    ) -> None:
        self._policy = policy
        self._identities = identities
        self._metrics = metrics
        self._refusal_log = RateLimiter()
        self._handlers: dict[str, Handler | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """The method's checked handler, built on its first call (grpc asks on every call)."""
        method = handler_call_details.method
        if method not in self._handlers:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None  # unknown methods are not cached: their names are the client's
            self._handlers[method] = self._wrap(method, handler)
        return self._handlers[method]

    def _wrap(self, method: str, handler: Handler) -> Handler | None:
        kinds = (
            (handler.unary_unary, self._unary, grpc.unary_unary_rpc_method_handler),
            (handler.unary_stream, self._stream, grpc.unary_stream_rpc_method_handler),
            (handler.stream_stream, self._stream, grpc.stream_stream_rpc_method_handler),
        )
        for inner, wrap, make in kinds:
            if inner is not None:
                return make(
                    wrap(method, inner),
                    request_deserializer=_tolerant(handler.request_deserializer),
                    response_serializer=handler.response_serializer,
                )
        return None  # no stream-unary method is served: UNIMPLEMENTED, never unchecked

    def _unary(self, method: str, inner: Behavior) -> Behavior:
        audited = method in authz.METHOD_ROLES  # ReplicaService; health Check is not audited

        async def behavior(request: Any, context: Context) -> Any:
            start = time.perf_counter()
            who = ""
            try:
                caller = self._caller(method, context)
                who = caller.identity
                self._policy.authorize(method, caller)
                if request is _UNDECODABLE:
                    raise InvalidArgumentError(MALFORMED)
                CALLER.set(caller)  # this call's task only
                response = await inner(request, context)
            except asyncio.CancelledError:
                self._record(audited, method, who, grpc.StatusCode.CANCELLED, start)
                raise
            except grpc.aio.AbortError:  # the servicer aborted itself (e.g. health NOT_FOUND)
                code: grpc.StatusCode | None = context.code()  # None until a handler sets one
                self._record(audited, method, who, code or grpc.StatusCode.UNKNOWN, start)
                raise
            except Exception as exc:
                code, message = to_status(exc)
                if (code, message) == INTERNAL:
                    log.exception("internal error", extra={"method": method, "identity": who})
                self._record(audited, method, who, code, start)
                await context.abort(code, message)
            self._record(audited, method, who, grpc.StatusCode.OK, start)
            return response

        return behavior

    def _record(
        self, audited: bool, method: str, who: str, code: grpc.StatusCode, start: float
    ) -> None:
        if not audited:
            return
        seconds = time.perf_counter() - start
        self._metrics.observe_rpc(method.lstrip("/"), code.name, seconds)
        log.info(
            "rpc",
            extra={
                "identity": who,
                "method": method,
                "code": code.name,
                "duration_ms": round(seconds * 1000, 3),
            },
        )

    def _stream(self, method: str, inner: Behavior) -> Behavior:
        """Health Watch and reflection: an accepted certificate is enough."""

        async def behavior(request: Any, context: Context) -> None:
            try:
                self._caller(method, context)
            except UnauthenticatedError as exc:
                await context.abort(*to_status(exc))
            if request is _UNDECODABLE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MALFORMED)
            if isinstance(request, AsyncIterable):  # stream-stream: check each message
                request = _decoded(request, context)
            result = inner(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    await context.write(item)
            else:
                await result

        return behavior

    def _caller(self, method: str, context: Context) -> authz.Caller:
        """The accepted caller of this call; raises UnauthenticatedError (counted and logged)."""
        auth = context.auth_context()
        _check_transport(auth)
        try:
            return self._policy.caller(self._identities.identity(auth))
        except IdentityRefusedError as exc:
            self._metrics.observe_refusal(exc.reason)
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


def _check_transport(auth: authz.AuthContext) -> None:
    version = authz.tls_version(auth)
    if version not in authz.ALLOWED_TLS_VERSIONS:
        raise UnauthenticatedError(f"TLS 1.3 required (negotiated {version or 'unknown'})")


def _tolerant(deserializer: Behavior) -> Behavior:
    if deserializer is None:
        return None

    def tolerant(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return _UNDECODABLE

    return tolerant


async def _decoded(requests: AsyncIterable[Any], context: Context) -> AsyncIterator[Any]:
    async for request in requests:
        if request is _UNDECODABLE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, MALFORMED)
        yield request

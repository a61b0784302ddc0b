"""replicant.v1.ReplicaService: reads from the watch caches, writes through the desired-state store.

Order inside every method: validate the request, require readiness, then look up. The interceptor
has already refused callers without the method's role anywhere and passes the accepted caller in;
here each call stays inside the caller's namespace grant (server/authz.py): outside it, Get and Set
answer exactly as for a missing Deployment and List shows nothing, and page tokens are bound to the
grant. Reads make no API server requests: they use the Deployment cache and the ReplicaTarget cache
for `desired`, say how fresh it is (`as_of`), and return response bytes joined from pre-encoded
Deployments (server/encoding.py).

The methods take `(request, caller)`, not grpc's `(request, context)`: they are registered by
`add_to_server` and only the interceptor (server/interceptor.py) can call them, so a server built
without it fails every call instead of serving without authorization. The reads are plain functions
the interceptor calls without a coroutine of their own.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from replicant.v1 import replicant_pb2 as pb
from server import encoding, validation
from server.authz import SERVICE
from server.errors import DeploymentNotFoundError, NotReadyError, PermissionDeniedError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from kube.informer import Key
    from kube.views import DeploymentView, DesiredStateView
    from server import authz
    from server.health import Readiness
    from server.interceptor import Registry
    from server.page_tokens import PageTokens


class DeploymentCache(Protocol):
    def watches(self, namespace: str) -> bool: ...

    def get(self, key: Key) -> DeploymentView | None: ...

    def iter_from(self, after: Key | None, namespace: str = "") -> Iterator[tuple[Key, Any]]: ...


class DesiredStateLookup(Protocol):
    """The desired state of a Deployment, from the ReplicaTarget cache (kube/desired.py).

    The same DesiredStateView object while the ReplicaTarget is unchanged: encodings are kept
    per view object (server/encoding.py)."""

    def get(self, key: Key) -> DesiredStateView | None: ...


class DesiredStateStore(Protocol):
    """Record a desired count and return it as stored (kube/target_store.py).

    Raises kube.errors.StaleVersionError on an expected_version mismatch (-> ABORTED),
    PreconditionError when there is nothing to compare it with or an HPA scales the Deployment
    (-> FAILED_PRECONDITION); with an empty expected_version it retries 409s itself.
    """

    async def set(
        self, key: Key, replicas: int, requested_by: str, expected_version: str
    ) -> DesiredStateView: ...


class ReplicaService:
    def __init__(
        self,
        deployments: DeploymentCache,
        readiness: Readiness,
        tokens: PageTokens,
        *,
        desired: DesiredStateLookup,
        store: DesiredStateStore,
        encoded: encoding.EncodedDeployments,
    ) -> None:
        self._deployments = deployments
        self._readiness = readiness
        self._tokens = tokens
        self._desired = desired
        self._store = store
        self._encoded = encoded

    def get_replicas(self, request: pb.GetReplicasRequest, caller: authz.Caller) -> bytes:
        """GetReplicasResponse bytes."""
        key = validation.ref(request.ref)
        self._require_ready()
        view = self._lookup(key, caller.read)
        framed = self._encoded.framed(view, self._desired.get(key))
        return encoding.get_response(framed, self._readiness.as_of())

    def list_deployments(self, request: pb.ListDeploymentsRequest, caller: authz.Caller) -> bytes:
        """ListDeploymentsResponse bytes."""
        namespace = validation.namespace(request.namespace) if request.namespace else ""
        size = validation.page_size(request.page_size)
        grant = caller.read
        scope = (namespace, grant.fingerprint())
        after = self._tokens.decode(request.page_token, scope)
        self._require_ready()
        # Outside the grant: exactly the answer for a namespace with nothing. The filter holds
        # even for a forged token. TODO: iterate only the granted namespaces if grants ever get
        # much smaller than the cache.
        visible = not namespace or grant.allows(namespace)

        def build() -> encoding.Page:
            items = self._deployments.iter_from(after, namespace) if visible else iter(())
            if grant.namespaces is not None:  # a grant of every namespace needs no filter
                items = (item for item in items if grant.allows(item[0][0]))
            # One extra item tells whether another page follows.
            page = list(itertools.islice(items, size + 1))
            more = len(page) > size
            framed, desired = self._encoded.framed, self._desired.get
            body = b"".join([framed(view, desired(key)) for key, view in page[:size]])
            return body, page[size - 1][0] if more else None

        # The scope holds the namespace and the grant's fingerprint: what the page shows.
        body, last = self._encoded.page((scope, after, size), build)
        return encoding.list_response(
            body,
            self._tokens.encode(last, scope) if last is not None else "",
            self._readiness.as_of(),
        )

    async def set_replicas(
        self, request: pb.SetReplicasRequest, caller: authz.Caller
    ) -> pb.SetReplicasResponse:
        key = validation.ref(request.ref)
        replicas = validation.replicas(request)
        expected = validation.expected_version(request.expected_version)
        if reason := self._readiness.write_reason():  # fail fast: no write without the API server
            raise NotReadyError(f"not ready: {reason}")
        self._lookup(key, caller.read)
        if not caller.write.allows(key[0]):  # the caller may read here, so this reveals nothing
            raise PermissionDeniedError(f"caller has no writer role in namespace {key[0]}")
        stored = await self._store.set(key, replicas, caller.identity, expected)
        return pb.SetReplicasResponse(desired=encoding.desired_message(stored))

    def _require_ready(self) -> None:
        reason = self._readiness.reason(for_reads=True)
        if reason:
            raise NotReadyError(f"not ready: {reason}")

    def _lookup(self, key: Key, grant: authz.Grant) -> DeploymentView:
        """The Deployment, or the same NOT_FOUND whether it is missing, unwatched or not granted."""
        visible = grant.allows(key[0]) and self._deployments.watches(key[0])
        view = self._deployments.get(key) if visible else None
        if view is None:
            raise DeploymentNotFoundError(f"deployment {key[0]}/{key[1]} not found")
        return view


def add_to_server(service: ReplicaService, server: Registry) -> None:
    """Register the three methods; reads answer bytes, so they have no response serializer."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "GetReplicas": grpc.unary_unary_rpc_method_handler(
            service.get_replicas, request_deserializer=pb.GetReplicasRequest.FromString
        ),
        "ListDeployments": grpc.unary_unary_rpc_method_handler(
            service.list_deployments, request_deserializer=pb.ListDeploymentsRequest.FromString
        ),
        "SetReplicas": grpc.unary_unary_rpc_method_handler(
            service.set_replicas,
            request_deserializer=pb.SetReplicasRequest.FromString,
            response_serializer=pb.SetReplicasResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)

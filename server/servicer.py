"""replicant.v1.ReplicaService: reads from the watch caches, writes through the desired-state store.

Order inside every method: validate the request, require readiness, then look up. The interceptor
has already refused callers without the method's role anywhere; here each call stays inside the
caller's namespace grant (server/authz.py): outside it, Get and Set answer exactly as for a missing
Deployment and List shows nothing, and page tokens are bound to the grant. Reads make no API
server requests: they use the Deployment cache and the ReplicaTarget cache for `desired`, and
say how fresh it is (`as_of`).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Protocol

from replicant.v1 import replicant_pb2, replicant_pb2_grpc
from server import authz, validation
from server.errors import DeploymentNotFoundError, NotReadyError, PermissionDeniedError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import grpc

    from kube.informer import Key
    from kube.views import DeploymentView, DesiredStateView
    from server.health import Readiness
    from server.page_tokens import PageTokens


class DeploymentCache(Protocol):
    def watches(self, namespace: str) -> bool: ...

    def get(self, key: Key) -> DeploymentView | None: ...

    def iter_from(self, after: Key | None, namespace: str = "") -> Iterator[tuple[Key, Any]]: ...


class DesiredStateLookup(Protocol):
    """The desired state of a Deployment, from the ReplicaTarget cache (kube/desired.py)."""

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


class ReplicaService(replicant_pb2_grpc.ReplicaServiceServicer):
    def __init__(
        self,
        deployments: DeploymentCache,
        readiness: Readiness,
        tokens: PageTokens,
        *,
        desired: DesiredStateLookup,
        store: DesiredStateStore,
    ) -> None:
        self._deployments = deployments
        self._readiness = readiness
        self._tokens = tokens
        self.desired = desired
        self.store = store

    async def GetReplicas(  # noqa: N802 - name fixed by the proto
        self,
        request: replicant_pb2.GetReplicasRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> replicant_pb2.GetReplicasResponse:
        key = validation.ref(request.ref)
        caller = authz.current_caller.get()
        self._require_ready()
        response = replicant_pb2.GetReplicasResponse(
            deployment=self._deployment(self._lookup(key, caller.read))
        )
        self._stamp(response)
        return response

    async def ListDeployments(  # noqa: N802 - name fixed by the proto
        self,
        request: replicant_pb2.ListDeploymentsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> replicant_pb2.ListDeploymentsResponse:
        namespace = validation.namespace(request.namespace) if request.namespace else ""
        size = validation.page_size(request.page_size)
        grant = authz.current_caller.get().read
        scope = (namespace, grant.fingerprint())
        after = self._tokens.decode(request.page_token, scope)
        self._require_ready()
        # Outside the grant: exactly the answer for a namespace with nothing. The filter holds
        # even for a forged token. TODO: iterate only the granted namespaces if grants ever get
        # much smaller than the cache.
        visible = not namespace or grant.allows(namespace)
        items = self._deployments.iter_from(after, namespace) if visible else iter(())
        granted = (item for item in items if grant.allows(item[0][0]))
        # One extra item tells whether another page follows.
        page = list(itertools.islice(granted, size + 1))
        more = len(page) > size
        page = page[:size]
        response = replicant_pb2.ListDeploymentsResponse(
            deployments=[self._deployment(view) for _, view in page],
            next_page_token=self._tokens.encode(page[-1][0], scope) if more else "",
        )
        self._stamp(response)
        return response

    async def SetReplicas(  # noqa: N802 - name fixed by the proto
        self,
        request: replicant_pb2.SetReplicasRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> replicant_pb2.SetReplicasResponse:
        key = validation.ref(request.ref)
        replicas = validation.replicas(request)
        expected = validation.expected_version(request.expected_version)
        caller = authz.current_caller.get()
        if reason := self._readiness.write_reason():  # fail fast: no write without the API server
            raise NotReadyError(f"not ready: {reason}")
        self._lookup(key, caller.read)
        if not caller.write.allows(key[0]):  # the caller may read here, so this reveals nothing
            raise PermissionDeniedError(f"caller has no writer role in namespace {key[0]}")
        stored = await self.store.set(key, replicas, caller.identity, expected)
        return replicant_pb2.SetReplicasResponse(desired=desired_proto(stored))

    def _require_ready(self) -> None:
        reason = self._readiness.reason(for_reads=True)
        if reason:
            raise NotReadyError(f"not ready: {reason}")

    def _stamp(
        self, response: replicant_pb2.GetReplicasResponse | replicant_pb2.ListDeploymentsResponse
    ) -> None:
        if (as_of := self._readiness.as_of()) is not None:
            response.as_of.FromDatetime(as_of)

    def _lookup(self, key: Key, grant: authz.Grant) -> DeploymentView:
        """The Deployment, or the same NOT_FOUND whether it is missing, unwatched or not granted."""
        visible = grant.allows(key[0]) and self._deployments.watches(key[0])
        view = self._deployments.get(key) if visible else None
        if view is None:
            raise DeploymentNotFoundError(f"deployment {key[0]}/{key[1]} not found")
        return view

    def _deployment(self, view: DeploymentView) -> replicant_pb2.Deployment:
        message = replicant_pb2.Deployment(
            ref=replicant_pb2.DeploymentRef(namespace=view.namespace, name=view.name),
            current=replicant_pb2.CurrentState(
                spec_replicas=view.spec_replicas,
                replicas=view.replicas,
                ready_replicas=view.ready_replicas,
                available_replicas=view.available_replicas,
                updated_replicas=view.updated_replicas,
                generation=view.generation,
                observed_generation=view.observed_generation,
            ),
        )
        if (stored := self.desired.get((view.namespace, view.name))) is not None:
            message.desired.CopyFrom(desired_proto(stored))
        return message


def desired_proto(view: DesiredStateView) -> replicant_pb2.DesiredState:
    message = replicant_pb2.DesiredState(
        replicas=view.replicas, requested_by=view.requested_by, version=view.version
    )
    if view.requested_at is not None:
        message.requested_at.FromDatetime(view.requested_at)
    if view.reconcile is not None:
        message.reconcile.CopyFrom(
            replicant_pb2.ReconcileStatus(
                converged=view.reconcile.converged,
                reason=view.reconcile.reason,
                message=view.reconcile.message,
                observed_generation=view.reconcile.observed_generation,
            )
        )
    return message

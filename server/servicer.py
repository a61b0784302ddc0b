"""replicant.v1.ReplicaService (requirement: read, set and list Deployment replica counts).

Order inside every method: validate the request, require readiness, then look up. The interceptor
(server/interceptor.py) has already refused callers without the method's role anywhere and hands
the accepted caller over in `CALLER`; here each call stays inside the caller's namespace grant
(server/authz.py): outside it, Get and Set answer exactly as for a missing Deployment and List
shows nothing, and page tokens are bound to the grant. Reads make no API server requests: they use
the Deployment cache and the ReplicaTarget cache for `desired`, and say how fresh they are
(`as_of`).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from kube.desired import desired_state_view
from replicant.v1 import replicant_pb2 as pb
from replicant.v1 import replicant_pb2_grpc
from server import page_tokens, validation
from server.errors import DeploymentNotFoundError, NotReadyError, PermissionDeniedError
from server.interceptor import CALLER

if TYPE_CHECKING:
    from datetime import datetime

    import grpc

    from kube.informer import Key
    from kube.replicatargets import ReplicaTargetView
    from kube.resources import InformerGroup
    from kube.target_store import ReplicaTargetStore
    from kube.views import DeploymentView, DesiredStateView
    from server import authz
    from server.health import Readiness

    Context = grpc.aio.ServicerContext[Any, Any]
    _Built = tuple[DeploymentView, ReplicaTargetView | None, pb.Deployment]
    _PageKey = tuple[str, str, Key | None, int]  # namespace filter, grant, after, size
    _Page = pb.ListDeploymentsResponse
    _Items = list[tuple[Key, DeploymentView]]
    # A cached page: its items (one extra), their ReplicaTargets, the reply, changes seen then.
    _Shown = tuple[_Items, dict[Key, ReplicaTargetView], _Page, int]

# Bound the caches: cleared when full (deleted Deployments and pages asked once stay in them).
# TODO: drop entries on the informer's delete events if clearing shows up in `make bench`.
MAX_CACHED_MESSAGES = 50_000
MAX_CACHED_PAGES = 100


class ReplicaService(replicant_pb2_grpc.ReplicaServiceServicer):
    def __init__(
        self,
        deployments: InformerGroup[DeploymentView],
        readiness: Readiness,
        *,
        targets: InformerGroup[ReplicaTargetView],
        store: ReplicaTargetStore,
    ) -> None:
        self._deployments = deployments
        self._readiness = readiness
        self._targets = targets
        self._store = store
        # key -> (the views it was built from, the message): see _message.
        self._messages: dict[Key, _Built] = {}
        self._pages: dict[_PageKey, _Shown] = {}  # see _page
        self._changes = 0  # events the caches have applied (any namespace)
        for deployment_informer in deployments.informers:
            deployment_informer.subscribe(self._count_change)
        for target_informer in targets.informers:
            target_informer.subscribe(self._count_change)

    async def GetReplicas(  # noqa: N802 - the generated servicer's name
        self, request: pb.GetReplicasRequest, context: Context
    ) -> pb.GetReplicasResponse:
        key = validation.ref(request.ref)
        as_of = self._as_of()
        view = self._lookup(key, CALLER.get().read)
        response = pb.GetReplicasResponse(deployment=self._message(view, self._targets.get(key)))
        response.as_of.FromDatetime(as_of)
        return response

    async def ListDeployments(  # noqa: N802 - the generated servicer's name
        self, request: pb.ListDeploymentsRequest, context: Context
    ) -> pb.ListDeploymentsResponse:
        namespace = validation.namespace(request.namespace) if request.namespace else ""
        size = validation.page_size(request.page_size)
        grant = CALLER.get().read
        scope = (namespace, grant.fingerprint())
        after = page_tokens.decode(request.page_token, scope)
        as_of = self._as_of()
        response = self._page((*scope, after, size), grant)
        response.as_of.FromDatetime(as_of)
        return response

    async def SetReplicas(  # noqa: N802 - the generated servicer's name
        self, request: pb.SetReplicasRequest, context: Context
    ) -> pb.SetReplicasResponse:
        caller = CALLER.get()
        key = validation.ref(request.ref)
        replicas = validation.replicas(request)
        expected = validation.expected_version(request.expected_version)
        if reason := self._readiness.write_reason():  # fail fast: no write without the API server
            raise NotReadyError(f"not ready: {reason}")
        self._lookup(key, caller.read)
        if not caller.write.allows(key[0]):  # the caller may read here, so this reveals nothing
            raise PermissionDeniedError(f"caller has no writer role in namespace {key[0]}")
        stored = await self._store.set(key, replicas, caller.identity, expected)
        return pb.SetReplicasResponse(desired=desired_message(stored))

    def _as_of(self) -> datetime:
        """How current the caches are; NotReadyError until they have synced."""
        as_of = self._readiness.as_of()
        if as_of is None:
            raise NotReadyError(f"not ready: {self._readiness.reason(for_reads=True)}")
        return as_of

    def _lookup(self, key: Key, grant: authz.Grant) -> DeploymentView:
        """The Deployment, or the same NOT_FOUND whether it is missing, unwatched or not granted."""
        visible = grant.allows(key[0]) and self._deployments.watches(key[0])
        view = self._deployments.get(key) if visible else None
        if view is None:
            raise DeploymentNotFoundError(f"deployment {key[0]}/{key[1]} not found")
        return view

    def _page(self, key: _PageKey, grant: authz.Grant) -> _Page:
        """The page's reply, reused while no cache changed since, or while the Deployments and
        ReplicaTargets it shows are the same: copying hundreds of Deployment messages into a new
        reply, then reading them from the cache, were most of a List's CPU (`make bench`).
        Callers set its as_of: gRPC serializes a reply before another call runs."""
        cached = self._pages.get(key)
        if cached is not None and cached[3] == self._changes:
            return cached[2]
        namespace, fingerprint, after, size = key
        # Outside the grant: exactly the answer for a namespace with nothing. The filter holds
        # even for a forged token. TODO: iterate only the granted namespaces if grants ever get
        # much smaller than the cache.
        visible = not namespace or grant.allows(namespace)
        items = self._deployments.iter_from(after, namespace) if visible else iter(())
        if grant.namespaces is not None:  # a grant of every namespace needs no filter
            items = (item for item in items if grant.allows(item[0][0]))
        page = list(itertools.islice(items, size + 1))  # one extra: does another page follow?
        last = page[-1][0] if page else ("", "")
        in_page = self._targets.iter_from(after, namespace)
        targets = dict(itertools.takewhile(lambda item: item[0] <= last, in_page))
        if cached is None or cached[0] != page or cached[1] != targets:
            response = pb.ListDeploymentsResponse(
                deployments=[self._message(view, targets.get(ref)) for ref, view in page[:size]],
                next_page_token=page_tokens.encode(page[size - 1][0], (namespace, fingerprint))
                if len(page) > size
                else "",
            )
            cached = (page, targets, response, 0)
        if len(self._pages) >= MAX_CACHED_PAGES:
            self._pages.clear()
        self._pages[key] = (*cached[:3], self._changes)
        return cached[2]

    def _count_change(self, *_: object) -> None:
        self._changes += 1

    def _message(self, view: DeploymentView, target: ReplicaTargetView | None) -> pb.Deployment:
        """The Deployment message, built once per pair of cached views (the caches replace a view
        on every change, so identity is the version). Callers copy it, never change it."""
        key = (view.namespace, view.name)
        cached = self._messages.get(key)
        if cached is not None and cached[0] is view and cached[1] is target:
            return cached[2]
        message = pb.Deployment(
            ref=pb.DeploymentRef(namespace=view.namespace, name=view.name),
            current=pb.CurrentState(
                spec_replicas=view.spec_replicas,
                replicas=view.replicas,
                ready_replicas=view.ready_replicas,
                available_replicas=view.available_replicas,
                updated_replicas=view.updated_replicas,
                generation=view.generation,
                observed_generation=view.observed_generation,
            ),
            desired=None if target is None else desired_message(desired_state_view(target)),
        )
        if len(self._messages) >= MAX_CACHED_MESSAGES:  # deleted Deployments leave entries
            self._messages.clear()
        self._messages[key] = (view, target, message)
        return message


def desired_message(view: DesiredStateView) -> pb.DesiredState:
    reconcile = view.reconcile
    message = pb.DesiredState(
        replicas=view.replicas,
        requested_by=view.requested_by,
        version=view.version,
        reconcile=None
        if reconcile is None
        else pb.ReconcileStatus(
            converged=reconcile.converged,
            reason=reconcile.reason,
            message=reconcile.message,
            observed_generation=reconcile.observed_generation,
        ),
    )
    if view.requested_at is not None:
        message.requested_at.FromDatetime(view.requested_at)
    return message

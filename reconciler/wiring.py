"""Builds the reconciler's pieces over the server's caches, for server/app.py to start.

The one place that knows the concrete seams: informer caches become the reconciler's World,
server.kube writers its Writer, a Lease its leader election. Kept apart from app.py so the
server's wiring stays one call, and from reconcile.py so that stays free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.controller import Controller
from reconciler.decide import DeploymentFacts
from reconciler.leader import ElectionConfig, LeaderElector
from reconciler.reconcile import Reconciler
from server.kube.autoscalers import AutoscalerIndex, autoscaler_informers
from server.kube.leases import LeaseApi
from server.kube.replicatargets import (
    DesiredStates,
    ReplicaTargetStore,
    replica_target_informers,
    write_status,
)
from server.kube.scale import EventRecorder, scale_deployment

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence

    from reconciler.decide import EventSpec, ScaleStep
    from reconciler.reconcile import Key
    from server.kube.autoscalers import AutoscalerView
    from server.kube.client import ApiTransport
    from server.kube.informer import Informer
    from server.kube.replicatargets import ReplicaTargetView, TargetStatus
    from server.kube.resources import InformerGroup
    from server.kube.views import DeploymentView


class CacheWorld:
    """reconcile.World over the informer caches: every read is a dict lookup."""

    def __init__(
        self,
        targets: InformerGroup[ReplicaTargetView],
        deployments: InformerGroup[DeploymentView],
        autoscalers: AutoscalerIndex,
    ) -> None:
        self._targets = targets
        self._deployments = deployments
        self._autoscalers = autoscalers

    def target(self, key: Key) -> ReplicaTargetView | None:
        return self._targets.get(key)

    def deployment(self, key: Key) -> DeploymentFacts | None:
        view = self._deployments.get(key)
        if view is None:
            return None
        return DeploymentFacts(
            uid=view.uid,
            resource_version=view.resource_version,
            spec_replicas=view.spec_replicas,
            ready_replicas=view.ready_replicas,
        )

    def autoscaler_for(self, key: Key) -> str | None:
        return self._autoscalers.targeting(key)

    def target_keys(self) -> Iterator[Key]:
        return (key for key, _ in self._targets.iter_from(None))


class CachedAutoscalers:
    """replicatargets.Autoscalers over the HPA index, and whether its informers have synced."""

    def __init__(self, index: AutoscalerIndex, hpas: InformerGroup[AutoscalerView]) -> None:
        self._index = index
        self._hpas = hpas

    @property
    def synced(self) -> bool:
        return bool(self._hpas.synced)

    def targeting(self, deployment: Key) -> str | None:
        return self._index.targeting(deployment)


class ApiWriter:
    """reconcile.Writer over server.kube: scale subresource, status subresource, Events."""

    def __init__(self, api: ApiTransport, events: EventRecorder) -> None:
        self._api = api
        self._events = events

    async def scale(self, key: Key, step: ScaleStep) -> None:
        await scale_deployment(self._api, key, step.replicas, step.resource_version)

    async def write_status(self, target: ReplicaTargetView, status: TargetStatus) -> None:
        await write_status(self._api, target, status)

    async def record_event(self, target: ReplicaTargetView, event: EventSpec) -> None:
        await self._events.record(target, event.type, event.reason, event.message)


@dataclass
class ReconcilerParts:
    """What app.py plugs into the process (see server/app.py Extensions)."""

    desired: DesiredStates
    store: ReplicaTargetStore
    elector: LeaderElector
    controller: Controller
    informers: list[Informer[Any]] = field(default_factory=list)
    read_caches: list[Informer[Any]] = field(default_factory=list)  # what the API reads

    def background(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """Leader election, which runs the controller only while holding the Lease."""
        return {"leader-election": lambda: self.elector.run(self.controller.run)}


def build(
    api: ApiTransport,
    deployments: InformerGroup[DeploymentView],
    *,
    namespaces: Sequence[str],
    lease_namespace: str,
    lease_name: str,
    identity: str,
    election: ElectionConfig | None = None,
) -> ReconcilerParts:
    targets = replica_target_informers(api, namespaces)
    hpas = autoscaler_informers(api, namespaces)
    index = AutoscalerIndex()
    world = CacheWorld(targets, deployments, index)
    reconciler = Reconciler(world, ApiWriter(api, EventRecorder(api, identity)))
    controller = Controller(
        reconciler.reconcile,
        keys=world.target_keys,
        synced=lambda: targets.synced and hpas.synced and deployments.synced,
    )
    _subscribe(targets, deployments, hpas, index, controller.enqueue)
    return ReconcilerParts(
        desired=DesiredStates(targets),
        store=ReplicaTargetStore(api, CachedAutoscalers(index, hpas)),
        elector=LeaderElector(LeaseApi(api, lease_namespace, lease_name), identity, election),
        controller=controller,
        informers=[*targets.informers, *hpas.informers],
        read_caches=list(targets.informers),
    )


def _subscribe(
    targets: InformerGroup[ReplicaTargetView],
    deployments: InformerGroup[DeploymentView],
    hpas: InformerGroup[AutoscalerView],
    index: AutoscalerIndex,
    enqueue: Callable[[Key], None],
) -> None:
    """Map every event to the ReplicaTarget key it concerns (same namespace and name)."""

    def on_target_or_deployment(key: Key, old: object, new: object) -> None:
        del old, new  # reconcile never asks what happened, only what is
        enqueue(key)

    def on_hpa(key: Key, old: AutoscalerView | None, new: AutoscalerView | None) -> None:
        index.on_change(key, old, new)
        # Both the Deployment it stopped targeting and the one it targets now.
        for view in (old, new):
            if view is not None and view.deployment_key is not None:
                enqueue(view.deployment_key)

    for target_informer in targets.informers:
        target_informer.subscribe(on_target_or_deployment)
    for deployment_informer in deployments.informers:
        deployment_informer.subscribe(on_target_or_deployment)
    for hpa_informer in hpas.informers:
        hpa_informer.subscribe(on_hpa)

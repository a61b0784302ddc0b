"""reconcile.World over the informer caches, and the watch events that wake a key.

Requirement: the reconciler reads only caches (its writes are kube/scale.py). reconcile.py stays
free of I/O behind its protocols (its tests hand it fakes); `subscribe` maps watch events to keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from kube.autoscalers import Autoscalers, AutoscalerView
    from kube.replicatargets import ReplicaTargetView
    from kube.resources import InformerGroup
    from kube.views import DeploymentView
    from reconciler.reconcile import Key


class CacheWorld:
    """reconcile.World over the informer caches: every read is a dict lookup."""

    def __init__(
        self,
        targets: InformerGroup[ReplicaTargetView],
        deployments: InformerGroup[DeploymentView],
        autoscalers: Autoscalers,
    ) -> None:
        self._targets = targets
        self._deployments = deployments
        self._autoscalers = autoscalers

    @property
    def synced(self) -> bool:
        """Every cache reconcile reads has listed once (the controller waits for it)."""
        return bool(self._targets.synced and self._deployments.synced and self._autoscalers.synced)

    def target(self, key: Key) -> ReplicaTargetView | None:
        return self._targets.get(key)

    def deployment(self, key: Key) -> DeploymentView | None:
        return self._deployments.get(key)

    def autoscaler_for(self, key: Key) -> str | None:
        return self._autoscalers.targeting(key)

    def target_keys(self) -> Iterator[Key]:
        return (key for key, _ in self._targets.iter_from(None))

    def subscribe(self, enqueue: Callable[[Key], None]) -> None:
        """Every event maps to the ReplicaTarget key it concerns (same namespace and name)."""

        def on_change(key: Key, old: object, new: object) -> None:
            del old, new  # reconcile never asks what happened, only what is
            enqueue(key)

        for target_informer in self._targets.informers:
            target_informer.subscribe(on_change)
        for deployment_informer in self._deployments.informers:
            deployment_informer.subscribe(on_change)

        def on_retarget(key: Key, old: AutoscalerView | None, new: AutoscalerView | None) -> None:
            # Both the Deployment an HPA stopped targeting and the one it targets now.
            for view in (old, new):
                if view is not None and (target := view.deployment_key) is not None:
                    enqueue(target)

        for hpa_informer in self._autoscalers.informers.informers:
            hpa_informer.subscribe(on_retarget)

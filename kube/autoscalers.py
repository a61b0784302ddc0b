"""Which HorizontalPodAutoscaler scales a Deployment, from the HPA informers.

Requirement: replicant never fights an HPA over spec.replicas (the reconciler leaves such a
Deployment alone, SetReplicas refuses it). The index follows informer events, so a lookup is a
dict read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kube.resources import InformerGroup

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from kube.client import ApiTransport, JSONObject
    from kube.informer import Key


@dataclass(frozen=True, slots=True)
class AutoscalerView:
    namespace: str
    name: str
    target_kind: str
    target_name: str
    target_group: str  # "apps" for a Deployment (apiVersion apps/v1)

    @property
    def deployment_key(self) -> Key | None:
        """(namespace, deployment name) when it targets an apps Deployment, else None."""
        if self.target_kind == "Deployment" and self.target_group == "apps":
            return (self.namespace, self.target_name)
        return None


def autoscaler_view(obj: JSONObject) -> AutoscalerView:
    meta = obj.get("metadata") or {}
    ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    api_version = str(ref.get("apiVersion") or "")
    return AutoscalerView(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        target_kind=str(ref.get("kind") or ""),
        target_name=str(ref.get("name") or ""),
        target_group=api_version.rpartition("/")[0],
    )


class Autoscalers:
    """Deployment key -> names of the HPAs targeting it, kept from the HPA informers' events.

    `on_retarget` hears the Deployment keys an HPA stopped or started targeting (the
    reconciler requeues them)."""

    def __init__(self, api: ApiTransport, namespaces: Sequence[str]) -> None:
        self.informers: InformerGroup[AutoscalerView] = InformerGroup(
            api, "autoscaling/v2", "horizontalpodautoscalers", namespaces, autoscaler_view
        )
        self._by_deployment: defaultdict[Key, set[str]] = defaultdict(set)
        self.on_retarget: list[Callable[[Key], None]] = []
        for informer in self.informers.informers:
            informer.subscribe(self.on_change)

    @property
    def synced(self) -> bool:
        return bool(self.informers.synced)

    def on_change(self, key: Key, old: AutoscalerView | None, new: AutoscalerView | None) -> None:
        """Informer subscriber: move the HPA from its old target to its new one."""
        if old is not None and (target := old.deployment_key) is not None:
            names = self._by_deployment.get(target)
            if names is not None:
                names.discard(key[1])
                if not names:
                    del self._by_deployment[target]
        if new is not None and (target := new.deployment_key) is not None:
            self._by_deployment[target].add(key[1])
        for view in (old, new):
            if view is not None and (target := view.deployment_key) is not None:
                for listener in self.on_retarget:
                    listener(target)

    def targeting(self, deployment: Key) -> str | None:
        """One HPA (the first by name) that scales this Deployment, or None."""
        names = self._by_deployment.get(deployment)
        return min(names) if names else None

"""Which HorizontalPodAutoscaler scales a Deployment, from the HPA informers.

Requirement: replicant never fights an HPA over spec.replicas (the reconciler leaves such a
Deployment alone, SetReplicas refuses it). A lookup scans the cached HPAs of one namespace:
there are few, and it costs no API call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kube.resources import InformerGroup

if TYPE_CHECKING:
    from collections.abc import Sequence

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
    """The HPA caches, asked which HPA targets a Deployment."""

    def __init__(self, api: ApiTransport, namespaces: Sequence[str]) -> None:
        self.informers: InformerGroup[AutoscalerView] = InformerGroup(
            api, "autoscaling/v2", "horizontalpodautoscalers", namespaces, autoscaler_view
        )

    @property
    def synced(self) -> bool:
        return bool(self.informers.synced)

    def targeting(self, deployment: Key) -> str | None:
        """One HPA (the first by name) that scales this Deployment, or None."""
        hpas = self.informers.iter_from(None, deployment[0])
        return next((key[1] for key, hpa in hpas if hpa.deployment_key == deployment), None)

"""Frozen views of Deployments and of desired state, and the Deployment converter.

Requirement: Get/List answer from the cache. The caches keep only the fields the API serves, as
immutable values readers share without locks; layers above kube never see raw API JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kube.fields import int_or_zero
from kube.resources import InformerGroup

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from kube.client import ApiTransport, JSONObject


@dataclass(frozen=True, slots=True)
class DeploymentView:
    namespace: str
    name: str
    uid: str
    resource_version: str
    spec_replicas: int
    replicas: int
    ready_replicas: int
    available_replicas: int
    updated_replicas: int
    generation: int
    observed_generation: int


@dataclass(frozen=True, slots=True)
class ReconcileView:
    """The ReplicaTarget's "Reconciled" condition."""

    converged: bool
    reason: str
    message: str
    observed_generation: int


@dataclass(frozen=True, slots=True)
class DesiredStateView:
    """What a writer asked for (a ReplicaTarget), as the API shows it."""

    replicas: int
    requested_by: str
    requested_at: datetime | None
    version: str
    reconcile: ReconcileView | None


def deployment_view(obj: JSONObject) -> DeploymentView:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    # spec.replicas defaults to 1 when unset (apps/v1 defaulting); the API always fills it in.
    spec_replicas = spec.get("replicas")
    return DeploymentView(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        spec_replicas=1 if spec_replicas is None else int_or_zero(spec_replicas),
        replicas=int_or_zero(status.get("replicas")),
        ready_replicas=int_or_zero(status.get("readyReplicas")),
        available_replicas=int_or_zero(status.get("availableReplicas")),
        updated_replicas=int_or_zero(status.get("updatedReplicas")),
        generation=int_or_zero(meta.get("generation")),
        observed_generation=int_or_zero(status.get("observedGeneration")),
    )


def deployment_informers(
    api: ApiTransport, namespaces: Sequence[str]
) -> InformerGroup[DeploymentView]:
    return InformerGroup(api, "apps/v1", "deployments", namespaces, deployment_view)

"""ReplicaTarget: the immutable view the caches hold, its parser, and its paths.

Requirement: desired state is stored in a custom resource. One parser serves the API
(kube/desired.py) and the reconciler; the writes are kube/target_store.py (SetReplicas) and
kube/scale.py (the reconciler's status).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from kube.fields import int_or_zero, optional_int, parse_time
from kube.resources import InformerGroup, collection_path

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from kube.client import ApiTransport

GROUP: Final = "replicant.dev"
VERSION: Final = "v1alpha1"
PLURAL: Final = "replicatargets"
KIND: Final = "ReplicaTarget"
API_VERSION: Final = f"{GROUP}/{VERSION}"
REQUESTED_BY: Final = "replicant.dev/requested-by"
REQUESTED_AT: Final = "replicant.dev/requested-at"
# The condition the API mirrors as DesiredState.reconcile (reconciler/conditions.py sets it).
RECONCILED: Final = "Reconciled"

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    """One entry of status.conditions (Kubernetes API conventions)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: datetime.datetime
    observed_generation: int


@dataclass(frozen=True)
class TargetStatus:
    """status of a ReplicaTarget, written only by the reconciler."""

    observed_generation: int = 0
    conditions: tuple[Condition, ...] = ()
    last_applied_replicas: int | None = None
    deployment_uid: str = ""
    replicas: int | None = None
    ready_replicas: int | None = None


@dataclass(frozen=True)
class ReplicaTargetView:
    """What replicant needs of one ReplicaTarget, immutable so cache readers cannot race."""

    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    replicas: int
    requested_by: str = ""
    requested_at: datetime.datetime | None = None
    status: TargetStatus = field(default_factory=TargetStatus)


def format_time(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serializes."""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_condition(raw: Mapping[str, Any]) -> Condition | None:
    status = raw.get("status")
    when = parse_time(raw.get("lastTransitionTime"))
    if status not in ("True", "False", "Unknown") or when is None:
        return None
    return Condition(
        type=str(raw.get("type", "")),
        status=status,
        reason=str(raw.get("reason", "")),
        message=str(raw.get("message", "")),
        last_transition_time=when,
        observed_generation=int_or_zero(raw.get("observedGeneration")),
    )


def _parse_status(raw: Mapping[str, Any]) -> TargetStatus:
    conditions = tuple(
        c for c in (_parse_condition(item) for item in raw.get("conditions") or ()) if c is not None
    )
    return TargetStatus(
        observed_generation=int_or_zero(raw.get("observedGeneration")),
        conditions=conditions,
        last_applied_replicas=optional_int(raw.get("lastAppliedReplicas")),
        deployment_uid=str(raw.get("deploymentUID") or ""),
        replicas=optional_int(raw.get("replicas")),
        ready_replicas=optional_int(raw.get("readyReplicas")),
    )


def parse_replica_target(raw: Mapping[str, Any]) -> ReplicaTargetView:
    """Build the view from the API's JSON (the CRD schema guarantees the spec's shape)."""
    meta: Mapping[str, Any] = raw.get("metadata") or {}
    spec: Mapping[str, Any] = raw.get("spec") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    return ReplicaTargetView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        generation=int_or_zero(meta.get("generation")),
        resource_version=str(meta.get("resourceVersion", "")),
        replicas=int_or_zero(spec.get("replicas")),
        requested_by=annotations.get(REQUESTED_BY, ""),
        requested_at=parse_time(annotations.get(REQUESTED_AT)),
        status=_parse_status(raw.get("status") or {}),
    )


# -- paths ----------------------------------------------------------------------------------------


def object_path(namespace: str, name: str) -> str:
    return f"{target_collection_path(namespace)}/{name}"


def target_collection_path(namespace: str) -> str:
    return collection_path(GROUP, VERSION, PLURAL, namespace)


def replica_target_informers(
    api: ApiTransport, namespaces: Sequence[str]
) -> InformerGroup[ReplicaTargetView]:
    return InformerGroup(api, API_VERSION, PLURAL, namespaces, parse_replica_target)

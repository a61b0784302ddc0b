"""ReplicaTarget custom resources: the typed view, and the writes (spec and status).

SetReplicas records desired state here and the reconciler reads it back from the
informer cache, so both sides share one parser and one serializer. Kubernetes API
errors are mapped to the domain hierarchy before they leave this module.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

GROUP: Final = "replicant.dev"
VERSION: Final = "v1alpha1"
PLURAL: Final = "replicatargets"
KIND: Final = "ReplicaTarget"
API_VERSION: Final = f"{GROUP}/{VERSION}"
REQUESTED_BY: Final = "replicant.dev/requested-by"
REQUESTED_AT: Final = "replicant.dev/requested-at"

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

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def parse_time(raw: object) -> datetime.datetime | None:
    """RFC 3339 from the API (always UTC, "Z"); None when absent or malformed."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def format_time(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serializes."""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(raw: object, default: int | None = None) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else default


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
        observed_generation=_int(raw.get("observedGeneration"), 0) or 0,
    )


def _parse_status(raw: Mapping[str, Any]) -> TargetStatus:
    conditions = tuple(
        c for c in (_parse_condition(item) for item in raw.get("conditions") or ()) if c is not None
    )
    return TargetStatus(
        observed_generation=_int(raw.get("observedGeneration"), 0) or 0,
        conditions=conditions,
        last_applied_replicas=_int(raw.get("lastAppliedReplicas")),
        deployment_uid=str(raw.get("deploymentUID") or ""),
        replicas=_int(raw.get("replicas")),
        ready_replicas=_int(raw.get("readyReplicas")),
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
        generation=_int(meta.get("generation"), 0) or 0,
        resource_version=str(meta.get("resourceVersion", "")),
        replicas=_int(spec.get("replicas"), 0) or 0,
        requested_by=annotations.get(REQUESTED_BY, ""),
        requested_at=parse_time(annotations.get(REQUESTED_AT)),
        status=_parse_status(raw.get("status") or {}),
    )


def status_body(status: TargetStatus) -> dict[str, Any]:
    """status as the API expects it; unset optional counts are left out."""
    body: dict[str, Any] = {
        "observedGeneration": status.observed_generation,
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": format_time(c.last_transition_time),
                "observedGeneration": c.observed_generation,
            }
            for c in status.conditions
        ],
    }
    if status.deployment_uid:
        body["deploymentUID"] = status.deployment_uid
    for key, value in (
        ("lastAppliedReplicas", status.last_applied_replicas),
        ("replicas", status.replicas),
        ("readyReplicas", status.ready_replicas),
    ):
        if value is not None:
            body[key] = value
    return body

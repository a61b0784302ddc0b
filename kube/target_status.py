"""The reconciler's write of a ReplicaTarget's status subresource (merge patch, optimistic)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kube.client import MERGE_PATCH
from kube.replicatargets import format_time, object_path

if TYPE_CHECKING:
    from kube.client import ApiTransport
    from kube.replicatargets import ReplicaTargetView, TargetStatus


def status_body(status: TargetStatus) -> dict[str, Any]:
    """status as a merge patch: unset optional fields are null, which removes them."""
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
    body["deploymentUID"] = status.deployment_uid or None
    body["lastAppliedReplicas"] = status.last_applied_replicas
    body["replicas"] = status.replicas
    body["readyReplicas"] = status.ready_replicas
    return body


async def write_status(api: ApiTransport, target: ReplicaTargetView, status: TargetStatus) -> None:
    """Merge-patch status, only if the target is unchanged since it was read (else 409).

    Unset optional fields are sent as null so the merge patch removes them; otherwise a stale
    count would stay and every reconcile would see a difference to write.
    """
    body = {
        "metadata": {"resourceVersion": target.resource_version},
        "status": status_body(status),
    }
    await api.request(
        "PATCH",
        object_path(target.namespace, target.name) + "/status",
        body=body,
        content_type=MERGE_PATCH,
    )

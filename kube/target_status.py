"""The reconciler's write of a ReplicaTarget's status subresource (merge patch, optimistic).

Requirement: the ReplicaTarget says whether its Deployment converged (the API mirrors it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kube.client import MERGE_PATCH
from kube.replicatargets import format_time, object_path

if TYPE_CHECKING:
    from kube.client import ApiTransport
    from kube.replicatargets import ReplicaTargetView, TargetStatus


async def write_status(api: ApiTransport, target: ReplicaTargetView, status: TargetStatus) -> None:
    """Merge-patch status, only if the target is unchanged since it was read (else 409).

    Unset optional fields are sent as null so the merge patch removes them; otherwise a stale
    count would stay and every reconcile would see a difference to write.
    """
    conditions = [
        {
            "type": c.type,
            "status": c.status,
            "reason": c.reason,
            "message": c.message,
            "lastTransitionTime": format_time(c.last_transition_time),
            "observedGeneration": c.observed_generation,
        }
        for c in status.conditions
    ]
    body = {
        "metadata": {"resourceVersion": target.resource_version},
        "status": {
            "observedGeneration": status.observed_generation,
            "conditions": conditions,
            "deploymentUID": status.deployment_uid or None,
            "lastAppliedReplicas": status.last_applied_replicas,
            "replicas": status.replicas,
            "readyReplicas": status.ready_replicas,
        },
    }
    path = object_path(target.namespace, target.name) + "/status"
    await api.request("PATCH", path, body=body, content_type=MERGE_PATCH)

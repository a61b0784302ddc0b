"""The reconciler's writes: a Deployment's scale, a ReplicaTarget's status, Events on it.

Requirement: the Deployment is reconciled to the desired count. Counts go through the `scale`
subresource (narrower RBAC, other fields untouched) with a resourceVersion precondition, so a
write decided on a stale cache fails with 409 instead of undoing a newer change.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Final

from kube.client import MERGE_PATCH
from kube.errors import KubeError
from kube.replicatargets import API_VERSION, KIND, format_time, object_path

if TYPE_CHECKING:
    from kube.client import ApiTransport
    from kube.informer import Key
    from kube.replicatargets import ReplicaTargetView, TargetStatus

log = logging.getLogger(__name__)

REPORTING_COMPONENT: Final = "replicant.dev/reconciler"


class ClusterWriter:
    """Writes through the API server for the replica `instance` (named in its Events)."""

    def __init__(self, api: ApiTransport, instance: str) -> None:
        self._api = api
        self._instance = instance

    async def scale(self, key: Key, replicas: int, resource_version: str) -> None:
        """Set spec.replicas if the Deployment is still at resource_version (409 otherwise)."""
        namespace, name = key
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
            "spec": {"replicas": replicas},
        }
        await self._api.request(
            "PUT", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", body=body
        )

    async def write_status(self, target: ReplicaTargetView, status: TargetStatus) -> None:
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
        await self._api.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def record_event(
        self, target: ReplicaTargetView, type_: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event, so `kubectl describe rt` tells what happened. Best effort: an Event
        is a hint for people, not state, so a failure is logged, not raised."""
        stamp = format_time(datetime.datetime.now(datetime.UTC))
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            # <object>.<suffix> as client-go names them; the API server makes the suffix unique and
            # cuts a long object name to fit. No aggregation here (TODO: a count/patch series if
            # an Event ever repeats often enough to matter).
            "metadata": {"generateName": f"{target.name}.", "namespace": target.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": target.name,
                "namespace": target.namespace,
                "uid": target.uid,
                "resourceVersion": target.resource_version,
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "replicant", "host": self._instance},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._api.request(
                "POST", f"/api/v1/namespaces/{target.namespace}/events", body=body
            )
        except KubeError as e:
            log.warning("event not recorded: %s", e, extra={"reason": reason})

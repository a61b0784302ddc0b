"""The reconciler's writes: a Deployment's scale, and Events on a ReplicaTarget.

Requirement: the Deployment is reconciled to the desired count. Counts go through the `scale`
subresource (narrower RBAC, no clobbering of other fields), with the Deployment's resourceVersion
as a precondition, so a write decided on a stale cache fails with 409 instead of undoing a newer
change.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Final

from kube.errors import KubeError
from kube.replicatargets import API_VERSION, KIND, format_time

if TYPE_CHECKING:
    from kube.client import ApiTransport
    from kube.informer import Key
    from kube.replicatargets import ReplicaTargetView

log = logging.getLogger(__name__)

REPORTING_COMPONENT: Final = "replicant.dev/reconciler"


async def scale_deployment(
    api: ApiTransport, key: Key, replicas: int, resource_version: str
) -> None:
    """Set spec.replicas if the Deployment is still at resource_version (409 otherwise)."""
    namespace, name = key
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
        "spec": {"replicas": replicas},
    }
    await api.request(
        "PUT", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", body=body
    )


class EventRecorder:
    """core/v1 Events on a ReplicaTarget, so `kubectl describe rt` tells what happened.

    Best effort by design: an Event is a hint for people, not state, so a failure is logged
    and swallowed rather than failing the reconcile that already did its work.
    """

    def __init__(self, api: ApiTransport, instance: str) -> None:
        self._api = api
        self._instance = instance

    async def record(
        self, target: ReplicaTargetView, type_: str, reason: str, message: str
    ) -> None:
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

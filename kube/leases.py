"""coordination.k8s.io/v1 Lease reads and writes for leader election (reconciler/leader.py).

Requirement: one reconciler among replicas. Every update has the Lease's resourceVersion as
precondition, so two candidates can never both believe their write won.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kube.errors import NotFoundError
from kube.fields import int_or_zero, parse_time

if TYPE_CHECKING:
    from kube.client import ApiTransport, JSONObject


@dataclass(frozen=True)
class LeaseRecord:
    """The leader-election fields of a Lease; resource_version is its optimistic lock."""

    holder: str
    lease_duration_seconds: int
    acquire_time: datetime.datetime | None
    renew_time: datetime.datetime | None
    transitions: int
    resource_version: str = ""


def _micro_time(value: datetime.datetime | None) -> str | None:
    # metav1.MicroTime: RFC 3339 with microseconds.
    if value is None:
        return None
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_lease(obj: JSONObject) -> LeaseRecord:
    spec = obj.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration_seconds=int_or_zero(spec.get("leaseDurationSeconds")),
        acquire_time=parse_time(spec.get("acquireTime")),
        renew_time=parse_time(spec.get("renewTime")),
        transitions=int_or_zero(spec.get("leaseTransitions")),
        resource_version=str((obj.get("metadata") or {}).get("resourceVersion") or ""),
    )


class LeaseApi:
    """One named Lease, for reconciler/leader.py: ConflictError means another writer won; any
    other error means the API server did not answer usefully: retry."""

    def __init__(self, api: ApiTransport, namespace: str, name: str) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    async def get(self) -> LeaseRecord | None:
        try:
            return parse_lease(await self._api.request("GET", f"{self._collection}/{self._name}"))
        except NotFoundError:
            return None

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        """ConflictError (409 AlreadyExists) if another candidate created it first."""
        return parse_lease(
            await self._api.request("POST", self._collection, body=self._body(record))
        )

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        """ConflictError (409) unless the Lease is still at record.resource_version."""
        return parse_lease(
            await self._api.request(
                "PUT", f"{self._collection}/{self._name}", body=self._body(record)
            )
        )

    def _body(self, record: LeaseRecord) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self._name, "namespace": self._namespace}
        if record.resource_version:
            metadata["resourceVersion"] = record.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                # An empty holder is how a released Lease looks (client-go writes "" too).
                "holderIdentity": record.holder,
                "leaseDurationSeconds": record.lease_duration_seconds,
                "acquireTime": _micro_time(record.acquire_time),
                "renewTime": _micro_time(record.renew_time),
                "leaseTransitions": record.transitions,
            },
        }

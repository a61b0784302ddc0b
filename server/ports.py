"""Narrow seams between the API and the desired-state backend (ReplicaTargets).

The API depends only on these Protocols; server/kube/replicatargets.py implements them and app.py
wires the implementations in, so the API layer's tests can use small fakes (or none: then Get/List
leave `desired` unset and SetReplicas answers UNIMPLEMENTED).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.kube.informer import Key
    from server.kube.views import DesiredStateView


class DesiredStateLookup(Protocol):
    """Read the desired state of a Deployment from a ReplicaTarget cache (no API calls)."""

    @property
    def synced(self) -> bool: ...

    def get(self, key: Key) -> DesiredStateView | None: ...


class DesiredStateStore(Protocol):
    """Record a desired count (create or update the ReplicaTarget) and return it as stored.

    Raises server.kube.errors.StaleVersionError on an expected_version mismatch (-> ABORTED),
    PreconditionError when there is nothing to compare it with or an HPA scales the Deployment
    (-> FAILED_PRECONDITION); with an empty expected_version it retries 409s itself.
    """

    async def set(
        self, key: Key, replicas: int, requested_by: str, expected_version: str
    ) -> DesiredStateView: ...

"""The API's view of desired state: DesiredState.version and the view Get/List/Set show.

Requirement: reads from the watch cache, and SetReplicas' optimistic concurrency. A version is
`uid:generation` of the ReplicaTarget (docs/design.md says why).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from kube.replicatargets import RECONCILED
from kube.views import DesiredStateView, ReconcileView

if TYPE_CHECKING:
    from kube.replicatargets import ReplicaTargetView


# metadata.uid (a UUID, as the API server makes them) and metadata.generation (1 .. 2**63-1).
_VERSION = re.compile(
    r"(?P<uid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(?P<gen>[1-9][0-9]{0,18})"
)
_MAX_GENERATION: Final = 2**63 - 1


def is_version(text: str) -> bool:
    """Spelled as version_of spells one, so two versions are equal exactly as strings."""
    match = _VERSION.fullmatch(text)
    return match is not None and int(match["gen"]) <= _MAX_GENERATION


def version_of(target: ReplicaTargetView) -> str:
    """DesiredState.version: the uid tells a re-created target from the old one (ABA)."""
    return f"{target.uid}:{target.generation}"


def desired_state_view(target: ReplicaTargetView) -> DesiredStateView:
    """What Get/List/Set show: the spec, who asked, the version and the Reconciled condition."""
    reconciled = next((c for c in target.status.conditions if c.type == RECONCILED), None)
    reconcile = (
        None
        if reconciled is None
        else ReconcileView(
            # A True condition about an older spec says nothing about this one.
            converged=reconciled.status == "True"
            and reconciled.observed_generation == target.generation,
            reason=reconciled.reason,
            message=reconciled.message,
            observed_generation=reconciled.observed_generation,
        )
    )
    return DesiredStateView(
        replicas=target.replicas,
        requested_by=target.requested_by,
        requested_at=target.requested_at,
        version=version_of(target),
        reconcile=reconcile,
    )

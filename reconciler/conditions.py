"""The ReplicaTarget "Reconciled" condition: its reasons, and how one is set.

Requirement: the ReplicaTarget (and the API's DesiredState.reconcile) says whether it converged
and why not. API conventions: lastTransitionTime moves only when the status flips.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

# The one condition type; it lives with the view so the API can mirror it without importing us.
from kube.replicatargets import RECONCILED as RECONCILED

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kube.replicatargets import Condition

# Reasons (CamelCase, API conventions). The same words name the Events.
CONVERGED: Final = "Converged"
DEPLOYMENT_MISSING: Final = "DeploymentMissing"
AUTOSCALER_PRESENT: Final = "AutoscalerPresent"
SCALE_FAILED: Final = "ScaleFailed"
# Another writer keeps changing spec.replicas; replicant holds off (reconciler/drift.py).
CONFLICTING_WRITER: Final = "ConflictingWriter"


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(conditions: Sequence[Condition], new: Condition) -> tuple[Condition, ...]:
    """Return `conditions` with `new` in place of the entry of its type, keeping the old
    lastTransitionTime unless the status flips (True/False/Unknown), not merely the reason."""
    old = find(conditions, new.type)
    if old is not None and old.status == new.status:
        new = dataclasses.replace(new, last_transition_time=old.last_transition_time)
    if old is None:
        return (*conditions, new)
    return tuple(new if c.type == new.type else c for c in conditions)

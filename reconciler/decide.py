"""What one reconcile should do, as a pure function of what the caches show.

Requirement: the reconciler's rules (converge, set drift back, wait for a missing Deployment,
spot a recreated one, leave an HPA's Deployment alone, hold off a drift fight), each a row of a
unit-test table; reconcile.py carries the decision out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from kube.replicatargets import (
    Condition,
    ConditionStatus,
    ReplicaTargetView,
    TargetStatus,
    format_time,
)
from reconciler import conditions as cond

if TYPE_CHECKING:
    import datetime

    from kube.views import DeploymentView

# Event reasons beyond the condition reasons (conditions.py) that share their names.
SCALED: Final = "Scaled"
DRIFT_CORRECTED: Final = "DriftCorrected"
DEPLOYMENT_RECREATED: Final = "DeploymentRecreated"

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class EventSpec:
    """A core/v1 Event to record on the ReplicaTarget."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class ScaleStep:
    """Write spec.replicas through deployments/scale, only if still at resource_version."""

    replicas: int
    resource_version: str


@dataclass(frozen=True)
class Decision:
    """status to write (after `scale` succeeds, if any), the Event, and when to come back;
    corrects_drift: `scale` sets back another writer's change (the drift guard counts it)."""

    status: TargetStatus
    scale: ScaleStep | None = None
    event: EventSpec | None = None
    requeue_after: datetime.timedelta | None = None
    corrects_drift: bool = False


def decide(
    target: ReplicaTargetView,
    deployment: DeploymentView | None,
    autoscaler: str | None,
    now: datetime.datetime,
    drift_hold: datetime.timedelta | None = None,
) -> Decision:
    """One step toward target.replicas; drift_hold: how long the drift guard still leaves drift
    of this spec alone (None: no hold)."""
    if deployment is None:
        return _missing(target, now)
    if autoscaler is not None:
        return _autoscaled(target, deployment, autoscaler, now)
    if deployment.spec_replicas == target.replicas:
        return Decision(status=_converged(target, deployment, now))
    if drift_hold is not None and drifted(target, deployment):
        return _held(target, deployment, drift_hold, now)
    return _scale(target, deployment, now)


def drifted(target: ReplicaTargetView, deployment: DeploymentView | None) -> bool:
    """spec.replicas moved away from the count replicant applied to this same Deployment."""
    if deployment is None or deployment.spec_replicas == target.replicas:
        return False
    previous = target.status
    return previous.last_applied_replicas == target.replicas and not _recreated(target, deployment)


def scale_failed(target: ReplicaTargetView, message: str, now: datetime.datetime) -> Decision:
    """The scale write was refused (RBAC, validation, admission): say so, once."""
    status = _with_condition(target, "False", cond.SCALE_FAILED, message, now)
    event = _on_entering(target, cond.SCALE_FAILED, "Warning", message)
    return Decision(status=status, event=event)


def _missing(target: ReplicaTargetView, now: datetime.datetime) -> Decision:
    message = f"Deployment {target.namespace}/{target.name} not found; waiting for it"
    status = _with_condition(target, "False", cond.DEPLOYMENT_MISSING, message, now)
    # Keep deploymentUID: when the Deployment comes back with a new UID, that is a recreate.
    status = dataclasses.replace(status, replicas=None, ready_replicas=None)
    return Decision(
        status=status, event=_on_entering(target, cond.DEPLOYMENT_MISSING, "Warning", message)
    )


def _autoscaled(
    target: ReplicaTargetView, deployment: DeploymentView, hpa: str, now: datetime.datetime
) -> Decision:
    message = f"HorizontalPodAutoscaler {hpa} scales this Deployment; replicant leaves it alone"
    status = _with_condition(target, "False", cond.AUTOSCALER_PRESENT, message, now)
    status = _with_counts(status, deployment, deployment.spec_replicas)
    return Decision(
        status=status, event=_on_entering(target, cond.AUTOSCALER_PRESENT, "Warning", message)
    )


def _held(
    target: ReplicaTargetView,
    deployment: DeploymentView,
    hold: datetime.timedelta,
    now: datetime.datetime,
) -> Decision:
    # The end of the hold, not what is left of it: the message (and so status) stays unchanged
    # across the reconciles of one hold.
    message = (
        f"another writer keeps setting spec.replicas (now {deployment.spec_replicas}, desired"
        f" {target.replicas}); not setting it back before {format_time(now + hold)}."
        " Stop the other writer (a GitOps tool, a chart's replicas:) or delete this ReplicaTarget"
    )
    status = _with_condition(target, "False", cond.CONFLICTING_WRITER, message, now)
    status = _with_counts(status, deployment, deployment.spec_replicas)
    return Decision(
        status=status,
        event=_on_entering(target, cond.CONFLICTING_WRITER, "Warning", message),
        requeue_after=hold,
    )


def _recreated(target: ReplicaTargetView, deployment: DeploymentView) -> bool:
    previous_uid = target.status.deployment_uid
    return bool(previous_uid) and previous_uid != deployment.uid


def _scale(
    target: ReplicaTargetView, deployment: DeploymentView, now: datetime.datetime
) -> Decision:
    previous = target.status
    if _recreated(target, deployment):
        reason = DEPLOYMENT_RECREATED
        message = f"Deployment was recreated; scaled the new one to {target.replicas}"
    elif previous.last_applied_replicas == target.replicas:
        reason = DRIFT_CORRECTED
        message = (
            f"spec.replicas was changed to {deployment.spec_replicas} outside replicant;"
            f" set back to {target.replicas}"
        )
    else:
        reason = SCALED
        message = f"Scaled from {deployment.spec_replicas} to {target.replicas}"
    return Decision(
        status=_converged(target, deployment, now),
        scale=ScaleStep(target.replicas, deployment.resource_version),
        event=EventSpec("Normal", reason, message),
        corrects_drift=reason == DRIFT_CORRECTED,
    )


def _converged(
    target: ReplicaTargetView, deployment: DeploymentView, now: datetime.datetime
) -> TargetStatus:
    """Status once spec.replicas equals the desired count (already, or by our write)."""
    message = f"Deployment spec.replicas is {target.replicas}"
    status = _with_condition(target, "True", cond.CONVERGED, message, now)
    status = _with_counts(status, deployment, target.replicas)
    return dataclasses.replace(status, last_applied_replicas=target.replicas)


def _with_counts(status: TargetStatus, deployment: DeploymentView, replicas: int) -> TargetStatus:
    return dataclasses.replace(
        status,
        deployment_uid=deployment.uid,
        replicas=replicas,
        ready_replicas=deployment.ready_replicas,
    )


def _with_condition(
    target: ReplicaTargetView,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime.datetime,
) -> TargetStatus:
    new = Condition(
        type=cond.RECONCILED,
        status=status,
        reason=reason,
        message=message,
        # The API stores whole seconds; truncate so a re-read compares equal.
        last_transition_time=now.replace(microsecond=0),
        observed_generation=target.generation,
    )
    return dataclasses.replace(
        target.status,
        observed_generation=target.generation,
        conditions=cond.set_condition(target.status.conditions, new),
    )


def _on_entering(
    target: ReplicaTargetView, reason: str, type_: EventType, message: str
) -> EventSpec | None:
    """An Event only when the condition first takes this reason: no Event per retry."""
    current = cond.find(target.status.conditions, cond.RECONCILED)
    if current is not None and current.reason == reason:
        return None
    return EventSpec(type_, reason, message)

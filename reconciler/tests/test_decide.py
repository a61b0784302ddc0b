"""decide(): one table row per case of the design (converged, drift, missing, recreated, HPA)."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from kube.replicatargets import Condition, ConditionStatus, ReplicaTargetView, TargetStatus
from kube.views import DeploymentView
from reconciler import conditions as cond
from reconciler.decide import ScaleStep, decide

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, 678, tzinfo=datetime.UTC)
EARLIER = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


def target(replicas: int = 3, generation: int = 2, **status: object) -> ReplicaTargetView:
    return ReplicaTargetView(
        namespace="ns",
        name="web",
        uid="rt-uid",
        generation=generation,
        resource_version="10",
        replicas=replicas,
        status=dataclasses.replace(TargetStatus(), **status),  # type: ignore[arg-type]
    )


def deployment(spec: int, uid: str = "dep-1") -> DeploymentView:
    return DeploymentView("ns", "web", uid, "77", spec, spec, 1, 1, spec, 1, 1)


def reconciled(reason: str, status: ConditionStatus = "False") -> Condition:
    return Condition(cond.RECONCILED, status, reason, "", EARLIER, 1)


@pytest.mark.parametrize(
    ("case", "rt", "dep", "hpa", "scale", "reason", "event"),
    [
        ("converged", target(), deployment(3), None, None, cond.CONVERGED, None),
        (
            "first scale",
            target(),
            deployment(1),
            None,
            ScaleStep(3, "77"),
            cond.CONVERGED,
            "Scaled",
        ),
        (
            "drift",
            target(last_applied_replicas=3, deployment_uid="dep-1"),
            deployment(5),
            None,
            ScaleStep(3, "77"),
            cond.CONVERGED,
            "DriftCorrected",
        ),
        (
            "recreated",
            target(last_applied_replicas=3, deployment_uid="dep-old"),
            deployment(1, uid="dep-new"),
            None,
            ScaleStep(3, "77"),
            cond.CONVERGED,
            "DeploymentRecreated",
        ),
        ("missing", target(), None, None, None, cond.DEPLOYMENT_MISSING, "DeploymentMissing"),
        (
            "still missing",
            target(conditions=(reconciled(cond.DEPLOYMENT_MISSING),)),
            None,
            None,
            None,
            cond.DEPLOYMENT_MISSING,
            None,
        ),
        (
            "hpa",
            target(),
            deployment(1),
            "web-hpa",
            None,
            cond.AUTOSCALER_PRESENT,
            "AutoscalerPresent",
        ),
    ],
)
def test_decide_takes_one_step_per_case(
    case: str,
    rt: ReplicaTargetView,
    dep: DeploymentView | None,
    hpa: str | None,
    scale: ScaleStep | None,
    reason: str,
    event: str | None,
) -> None:
    decision = decide(rt, dep, hpa, NOW)

    condition = cond.find(decision.status.conditions, cond.RECONCILED)
    assert condition is not None, case
    assert (decision.scale, condition.reason) == (scale, reason), case
    assert (decision.event.reason if decision.event else None) == event, case
    assert decision.status.observed_generation == rt.generation
    assert condition.observed_generation == rt.generation


def test_missing_deployment_waits_for_its_watch_and_keeps_the_uid_to_spot_a_recreate() -> None:
    decision = decide(target(deployment_uid="dep-1", replicas=3), None, None, NOW)

    assert decision.requeue_after is None  # the Deployment's watch event wakes the key
    assert decision.status.deployment_uid == "dep-1"
    assert decision.status.replicas is None


def test_converged_status_records_counts_and_last_applied() -> None:
    decision = decide(target(), deployment(3, uid="dep-9"), None, NOW)

    status = decision.status
    assert (status.replicas, status.ready_replicas, status.last_applied_replicas) == (3, 1, 3)
    assert status.deployment_uid == "dep-9"
    assert decision.requeue_after is None


def test_a_second_pass_on_a_converged_target_changes_nothing() -> None:
    first = decide(target(), deployment(3), None, NOW)
    again = dataclasses.replace(target(), status=first.status)

    second = decide(again, deployment(3), None, NOW + datetime.timedelta(hours=1))

    assert second.status == first.status
    assert second.scale is None
    assert second.event is None


def test_hpa_present_never_scales_even_when_counts_differ() -> None:
    decision = decide(target(replicas=9), deployment(2), "web-hpa", NOW)

    assert decision.scale is None
    assert decision.status.replicas == 2


def test_drift_on_hold_is_left_alone_and_says_until_when() -> None:
    drifting = target(last_applied_replicas=3, deployment_uid="dep-1")

    decision = decide(drifting, deployment(5), None, NOW, datetime.timedelta(minutes=5))

    condition = decision.status.conditions[0]
    assert (decision.scale, condition.reason) == (None, cond.CONFLICTING_WRITER)
    assert "before 2030-01-02T03:09:05Z" in condition.message
    assert decision.requeue_after == datetime.timedelta(minutes=5)
    assert decision.status.last_applied_replicas == 3  # drift is still counted from it


@pytest.mark.parametrize(
    ("rt", "dep"),
    [
        (target(), deployment(5)),  # replicant never applied a count: a first scale
        (target(last_applied_replicas=3, deployment_uid="dep-old"), deployment(5, uid="dep-new")),
    ],
)
def test_a_hold_applies_only_to_drift(rt: ReplicaTargetView, dep: DeploymentView) -> None:
    decision = decide(rt, dep, None, NOW, datetime.timedelta(minutes=5))

    assert decision.scale == ScaleStep(3, "77")

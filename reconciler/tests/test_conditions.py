"""set_condition keeps lastTransitionTime unless the status flips."""

from __future__ import annotations

import datetime

from kube.replicatargets import Condition, ConditionStatus
from reconciler import conditions as cond

T0 = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
T1 = datetime.datetime(2030, 1, 2, tzinfo=datetime.UTC)


def condition(status: ConditionStatus, reason: str, when: datetime.datetime) -> Condition:
    return Condition(cond.RECONCILED, status, reason, "msg", when, 1)


def test_new_condition_is_appended_with_its_own_time() -> None:
    other = Condition("Other", "True", "Fine", "", T0, 1)

    result = cond.set_condition((other,), condition("True", cond.CONVERGED, T1))

    assert result == (other, condition("True", cond.CONVERGED, T1))


def test_reason_change_without_status_flip_keeps_the_transition_time() -> None:
    old = condition("False", cond.DEPLOYMENT_MISSING, T0)

    (new,) = cond.set_condition((old,), condition("False", cond.AUTOSCALER_PRESENT, T1))

    assert (new.reason, new.last_transition_time) == (cond.AUTOSCALER_PRESENT, T0)


def test_status_flip_moves_the_transition_time() -> None:
    old = condition("False", cond.DEPLOYMENT_MISSING, T0)

    (new,) = cond.set_condition((old,), condition("True", cond.CONVERGED, T1))

    assert (new.status, new.last_transition_time) == ("True", T1)

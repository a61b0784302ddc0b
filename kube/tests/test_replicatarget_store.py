"""ReplicaTargetStore's own logic with a scripted transport: what it refuses before writing, and
how it tells a failed `test` op from other 422s. The API server's side (the atomic `test`, ABA
across delete and re-create) is proved in e2e/test_reconciler_conflicts.py."""

from __future__ import annotations

from typing import Any

import pytest

from kube.autoscalers import Autoscalers
from kube.errors import (
    InvalidError,
    KubeError,
    NotFoundError,
    NotSyncedError,
    PreconditionError,
    StaleVersionError,
)
from kube.target_store import ReplicaTargetStore

pytestmark = pytest.mark.asyncio

UID = "6f1c1a52-0b5e-4c59-9a53-2d2f1d3c8e01"
KEY = ("apps", "web")


def target(uid: str = UID, generation: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "apps", "name": "web", "uid": uid, "generation": generation},
        "spec": {"deploymentName": "web", "replicas": 3},
    }


class ScriptedApi:
    """Answers each request with the next scripted reply (an object, or an error to raise)."""

    def __init__(self, *replies: dict[str, Any] | KubeError) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[str, object]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((method, kwargs.get("body")))
        reply = self.replies.pop(0)
        if isinstance(reply, KubeError):
            raise reply
        return reply

    def stream(self, *_args: object, **_kwargs: object) -> Any:
        raise NotImplementedError


class FixedAutoscalers(Autoscalers):
    """The HPA cache's two answers, fixed (no informers)."""

    def __init__(self, hpa: str | None = None, *, synced: bool = True) -> None:
        self.hpa = hpa
        self._synced = synced

    @property
    def synced(self) -> bool:
        return self._synced

    def targeting(self, deployment: tuple[str, str]) -> str | None:
        return self.hpa


def store(api: ScriptedApi, autoscalers: Autoscalers | None = None) -> ReplicaTargetStore:
    return ReplicaTargetStore(api, autoscalers or FixedAutoscalers())


async def test_compare_and_set_tests_uid_and_generation_inside_the_patch() -> None:
    api = ScriptedApi(target(), target(generation=3))

    stored = await store(api).set(KEY, 4, "w", f"{UID}:2")

    (_, patch) = api.calls[1]
    assert isinstance(patch, list)
    assert patch[:2] == [
        {"op": "test", "path": "/metadata/uid", "value": UID},
        {"op": "test", "path": "/metadata/generation", "value": 2},
    ]
    assert stored.version == f"{UID}:3"


@pytest.mark.parametrize(
    "current", [target(generation=3), target(uid="0e7c7a5f-1111-4222-8333-944455556666")]
)
async def test_a_version_of_another_spec_or_object_is_stale_and_nothing_is_written(
    current: dict[str, Any],
) -> None:
    api = ScriptedApi(current)

    with pytest.raises(StaleVersionError):
        await store(api).set(KEY, 4, "w", f"{UID}:2")

    assert [method for method, _ in api.calls] == ["GET"]


async def test_a_version_where_no_target_exists_is_a_failed_precondition() -> None:
    with pytest.raises(PreconditionError, match="no desired state"):
        await store(ScriptedApi(NotFoundError("404"))).set(KEY, 4, "w", f"{UID}:2")


async def test_a_failed_test_op_is_stale_once_a_re_read_shows_the_object_moved_on() -> None:
    api = ScriptedApi(target(), InvalidError("422"), target(generation=3))

    with pytest.raises(StaleVersionError):
        await store(api).set(KEY, 4, "w", f"{UID}:2")


async def test_a_422_while_the_object_is_still_at_the_version_is_not_called_stale() -> None:
    api = ScriptedApi(target(), InvalidError("422"), target())

    with pytest.raises(InvalidError) as err:
        await store(api).set(KEY, 4, "w", f"{UID}:2")

    assert not isinstance(err.value, StaleVersionError)


async def test_a_target_deleted_between_read_and_patch_is_a_failed_precondition() -> None:
    with pytest.raises(PreconditionError):
        await store(ScriptedApi(target(), NotFoundError("404"))).set(KEY, 4, "w", f"{UID}:2")


@pytest.mark.parametrize("expected_version", ["", f"{UID}:2"])
async def test_a_deployment_an_hpa_scales_is_refused_naming_the_hpa_before_any_write(
    expected_version: str,
) -> None:
    api = ScriptedApi()

    with pytest.raises(PreconditionError, match="HorizontalPodAutoscaler web-hpa"):
        await store(api, FixedAutoscalers("web-hpa")).set(KEY, 4, "w", expected_version)

    assert api.calls == []


async def test_set_is_unavailable_until_the_autoscaler_cache_has_synced() -> None:
    with pytest.raises(NotSyncedError):
        await store(ScriptedApi(), FixedAutoscalers(synced=False)).set(KEY, 4, "w", "")

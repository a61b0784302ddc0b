"""DesiredStates and InformerGroup.iter_from against the fake API server."""

from __future__ import annotations

from typing import Any

import pytest

from kube.desired import DesiredStates
from kube.replicatargets import replica_target_informers
from kube.tests.fakes import FakeKube, deployment, running, until
from kube.views import deployment_informers

pytestmark = pytest.mark.asyncio

TARGETS = "/apis/replicant.dev/v1alpha1/replicatargets"


def target(ns: str, name: str, replicas: int, generation: int = 1) -> dict[str, Any]:
    meta = {"namespace": ns, "name": name, "uid": f"uid-{name}", "generation": generation}
    return {"metadata": {**meta, "resourceVersion": "5"}, "spec": {"replicas": replicas}}


async def test_desired_state_follows_its_replicatarget() -> None:
    kube = FakeKube()
    kube.objects[TARGETS] = [target("a", "web", 3)]
    group = replica_target_informers(kube, [])
    states = DesiredStates(group)
    async with running(group.informers[0]):
        watch = await kube.next_watch(1)
        first = states.get(("a", "web"))
        assert first is not None
        assert first.replicas == 3

        watch.events.put_nowait({"type": "MODIFIED", "object": target("a", "web", 4, 2)})
        await until(lambda: getattr(states.get(("a", "web")), "replicas", None) == 4)

        watch.events.put_nowait({"type": "DELETED", "object": target("a", "web", 4, 2)})
        await until(lambda: states.get(("a", "web")) is None)


@pytest.mark.parametrize("namespaces", [[], ["a", "b"]])
@pytest.mark.parametrize(
    ("after", "namespace", "expected"),
    [
        (None, "", ["a/x", "a/y", "b/x", "b/z"]),
        (("a", "x"), "", ["a/y", "b/x", "b/z"]),
        (("a", "y"), "", ["b/x", "b/z"]),
        (None, "b", ["b/x", "b/z"]),
        (("a", "y"), "b", ["b/x", "b/z"]),
        (("b", "x"), "b", ["b/z"]),
        (None, "c", []),
    ],
)
async def test_iter_from_walks_in_key_order_with_one_or_several_informers(
    namespaces: list[str], after: tuple[str, str] | None, namespace: str, expected: list[str]
) -> None:
    kube = FakeKube()
    objects = [
        deployment(ns, name) for ns, name in [("b", "z"), ("a", "y"), ("b", "x"), ("a", "x")]
    ]
    kube.objects["/apis/apps/v1/deployments"] = objects
    for ns in "ab":
        path = f"/apis/apps/v1/namespaces/{ns}/deployments"
        kube.objects[path] = [o for o in objects if o["metadata"]["namespace"] == ns]
    group = deployment_informers(kube, namespaces)
    for informer in group.informers:
        async with running(informer):
            await until(lambda informer=informer: informer.synced)  # type: ignore[misc]
    keys = ["/".join(key) for key, _ in group.iter_from(after, namespace)]
    assert keys == expected

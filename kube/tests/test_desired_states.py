"""desired_state_view over the ReplicaTarget cache, and InformerGroup.iter_from (fake API)."""

from __future__ import annotations

from typing import Any

import pytest

from kube import resources
from kube.desired import desired_state_view
from kube.replicatargets import replica_target_informers
from kube.tests.fakes import FakeKube, deployment, running, until
from kube.views import deployment_informers

pytestmark = pytest.mark.asyncio

TARGETS = "/apis/replicant.dev/v1alpha1/replicatargets"


def target(ns: str, name: str, replicas: int, generation: int = 1) -> dict[str, Any]:
    meta = {"namespace": ns, "name": name, "uid": f"uid-{name}", "generation": generation}
    return {"metadata": {**meta, "resourceVersion": "5"}, "spec": {"replicas": replicas}}


async def test_desired_state_follows_its_replicatarget_from_the_cache() -> None:
    kube = FakeKube()
    kube.objects[TARGETS] = [target("a", "web", 3)]
    group = replica_target_informers(kube, [])

    def desired(key: tuple[str, str]) -> Any:
        cached = group.get(key)
        return None if cached is None else desired_state_view(cached)

    async with running(group.informers[0]):
        watch = await kube.next_watch(1)
        first = desired(("a", "web"))

        watch.events.put_nowait({"type": "MODIFIED", "object": target("a", "web", 4, 2)})
        await until(lambda: getattr(desired(("a", "web")), "replicas", 0) == 4)
        changed = desired(("a", "web"))

        watch.events.put_nowait({"type": "DELETED", "object": target("a", "web", 4, 2)})
        await until(lambda: desired(("a", "web")) is None)
    assert first is not None
    assert (first.replicas, first.version) == (3, "uid-web:1")
    assert changed is not None
    assert changed.version == "uid-web:2"


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
@pytest.mark.parametrize("chunk", [1, 3, resources.CHUNK])
async def test_iter_from_walks_in_key_order_with_one_or_several_informers(
    namespaces: list[str],
    after: tuple[str, str] | None,
    namespace: str,
    expected: list[str],
    chunk: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resources, "CHUNK", chunk)  # a namespace ends inside a chunk, or not
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


async def test_iter_from_continues_by_key_when_items_change_between_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resources, "CHUNK", 2)
    kube = FakeKube()
    kube.objects["/apis/apps/v1/deployments"] = [deployment("a", name) for name in "bcdef"]
    group = deployment_informers(kube, [])
    async with running(group.informers[0]):
        watch = await kube.next_watch(1)
        walk = group.iter_from(None)
        seen = [next(walk)[0][1], next(walk)[0][1]]  # the first chunk: b, c
        for kind, name in (("DELETED", "d"), ("ADDED", "a"), ("ADDED", "cc")):
            watch.events.put_nowait({"type": kind, "object": deployment("a", name)})
        await until(lambda: len(group) == 6)
        seen += [key[1] for key, _ in walk]
    assert seen == ["b", "c", "cc", "e", "f"]  # d is gone; a is behind the walk

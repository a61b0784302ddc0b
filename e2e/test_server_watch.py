"""The watch cache against the real API server: 410 Gone forces a relist that drops deletions."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from server.kube import client as kube_client
from server.kube.informer import Informer
from server.kube.resources import collection_path
from server.kube.views import deployment_view

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from e2e.cluster_fixtures import KubeCluster, Kubectl
    from server.kube.client import JSONObject, KubeApi, Query


class TooOldOnFirstWatch:
    """Passes everything through, except that the first watch starts from resourceVersion "1"
    (long compacted / older than the watch cache), after running `gap` to change the world.

    That is exactly the situation after a long disconnect: the server answers 410 Gone."""

    def __init__(self, api: KubeApi, gap: Any) -> None:
        self._api = api
        self._gap = gap
        self.first_watch_answer: str = ""

    async def request(self, method: str, path: str, **kwargs: Any) -> JSONObject:
        return await self._api.request(method, path, **kwargs)

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, *, query: Query, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[JSONObject]]:
        if self._gap is not None:
            gap, self._gap = self._gap, None
            await gap()
            query = {**query, "resourceVersion": "1"}
        async with self._api.stream(path, query=query, read_timeout=read_timeout) as events:
            yield events


@pytest.mark.asyncio
async def test_relist_after_410_gone_drops_a_deployment_deleted_meanwhile(
    kube_cluster: KubeCluster, kubectl: Kubectl, namespace: str
) -> None:
    for name in ("stays", "goes"):
        kubectl("create", "deployment", name, "--image=nginx", "-n", namespace)

    async def delete_while_not_watching() -> None:
        await asyncio.to_thread(
            kubectl, "delete", "deployment", "goes", "-n", namespace, "--wait=true"
        )

    api = await kube_client.connect(str(kube_cluster.kubeconfig))
    transport = TooOldOnFirstWatch(api, delete_while_not_watching)
    informer = Informer(
        transport,
        resource="deployments",
        path=collection_path("apps", "v1", "deployments", namespace),
        convert=deployment_view,
    )
    seen_before_gap: list[str] = []
    task = asyncio.create_task(informer.run())
    try:
        for _ in range(600):  # bounded: the relist happens within one backoff step
            if informer.stats.lists >= 2:  # the initial list and the relist after 410
                break
            if not seen_before_gap and len(informer):
                seen_before_gap = [key[1] for key in informer.sorted_keys()]
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await api.close()
    assert seen_before_gap == ["goes", "stays"]
    assert (informer.stats.relists, informer.stats.errors) == (1, 0)  # a real 410, no other error
    assert [key[1] for key in informer.sorted_keys()] == ["stays"]

"""The watch cache against the real API server: 410 Gone forces a relist that drops deletions.

Runs on a control plane of its own because it compacts etcd and restarts the API server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from e2e.cluster_fixtures import KubeCluster, cluster_cli, run_kubectl
from e2e.reconciler_fixtures import private_cluster
from kube import client as kube_client
from kube.informer import Informer
from kube.resources import collection_path
from kube.views import deployment_view
from tools.cluster.components import Ports
from tools.cluster.paths import Layout

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from kube.client import JSONObject, KubeApi, Query


class GapBeforeFirstWatch:
    """Passes everything through, but runs `gap` once between the informer's first list and its
    first watch, from a resourceVersion the server then no longer has."""

    def __init__(self, api: KubeApi, gap: Any) -> None:
        self._api = api
        self._gap = gap
        self.lists = 0  # the informer sends only lists as plain requests

    async def request(self, method: str, path: str, **kwargs: Any) -> JSONObject:
        self.lists += 1
        return await self._api.request(method, path, **kwargs)

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, *, query: Query, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[JSONObject]]:
        if self._gap is not None:
            gap, self._gap = self._gap, None
            await gap()
        async with self._api.stream(path, query=query, read_timeout=read_timeout) as events:
            yield events


def _etcd(port: int, call: str, body: dict[str, object]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v3/kv/{call}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http://127.0.0.1
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def forget_history(cluster: KubeCluster) -> None:
    """Make the API server lose every resourceVersion up to now, as after a long disconnect:
    compact etcd (the API server itself does so every 5 minutes) and restart the API server so its
    watch cache starts after the compaction. Deterministic whatever the cluster's age."""
    assert cluster.state_dir is not None
    ports = Ports.load(Layout(cluster.state_dir).ports_file)
    assert ports is not None
    any_key = base64.b64encode(b"/registry/replicant-e2e").decode()
    revision = _etcd(ports.etcd_client, "range", {"key": any_key})["header"]["revision"]
    _etcd(ports.etcd_client, "compaction", {"revision": revision, "physical": True})
    cluster_cli("stop-apiserver", cluster.state_dir)
    cluster_cli("start-apiserver", cluster.state_dir)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    # Restarts its API server, so never the session cluster other tests share.
    with private_cluster(tmp_path_factory.mktemp("watch-410") / "state") as kube:
        yield kube


@pytest.mark.asyncio
async def test_relist_after_410_gone_drops_a_deployment_deleted_meanwhile(
    scratch: KubeCluster,
) -> None:
    namespace = "pages"
    run_kubectl(scratch, "create", "namespace", namespace)

    def kubectl(*args: str) -> None:
        run_kubectl(scratch, *args, "-n", namespace)

    for name in ("stays", "goes"):
        kubectl("create", "deployment", name, "--image=nginx")

    async def delete_while_not_watching() -> None:
        await asyncio.to_thread(kubectl, "delete", "deployment", "goes", "--wait=true")
        await asyncio.to_thread(forget_history, scratch)

    api = await kube_client.connect(str(scratch.kubeconfig))
    transport = GapBeforeFirstWatch(api, delete_while_not_watching)
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
            if seen_before_gap and informer.get((namespace, "goes")) is None:
                break
            if not seen_before_gap and len(informer):
                seen_before_gap = [key[1] for key, _ in informer.items_after(None, 10)]
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await api.close()
    assert seen_before_gap == ["goes", "stays"]
    assert transport.lists == 2  # the initial list and the relist after a real 410
    assert [key[1] for key, _ in informer.items_after(None, 10)] == ["stays"]

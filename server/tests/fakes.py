"""An in-memory stand-in for the API server behind server.kube's ApiTransport seam.

Lists are paged like the real thing; each watch is fed from a queue the test writes to; failures
are injected per call. Only what the informer and the probe use is modelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.kube.errors import ApiUnavailableError, KubeError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from server.kube.client import JSONObject, Query


def deployment(ns: str, name: str, replicas: int = 1, rv: int = 1, ready: int = 0) -> JSONObject:
    return {
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": f"uid-{ns}-{name}",
            "resourceVersion": str(rv),
            "generation": 1,
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": ready, "observedGeneration": 1},
    }


@dataclass
class Watch:
    query: dict[str, Any]
    events: asyncio.Queue[JSONObject | BaseException | None] = field(default_factory=asyncio.Queue)


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[str, list[JSONObject]] = {}
        self.resource_version = 100
        self.list_calls: list[dict[str, Any]] = []
        self.watches: list[Watch] = []
        self.watch_opened = asyncio.Event()
        self.list_errors: list[KubeError] = []
        self.watch_errors: list[KubeError] = []
        self.down = False
        self.fail_lists = False  # the API server answers probes but every list fails

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        content_type: str = "application/json",
        limits: object = None,
        expect_json: bool = True,
    ) -> JSONObject:
        await asyncio.sleep(0)
        if self.down:
            raise ApiUnavailableError("down")
        if path in ("/readyz", "/version"):
            return {}
        query = dict(query or {})
        self.list_calls.append({"path": path, **query})
        if self.list_errors:
            raise self.list_errors.pop(0)
        if self.fail_lists:
            raise ApiUnavailableError("list fails")
        items = self.objects.get(path, [])
        start = int(str(query.get("continue") or 0))
        limit = int(str(query.get("limit") or 500))
        page = items[start : start + limit]
        more = start + limit < len(items)
        meta = {"resourceVersion": str(self.resource_version)}
        if more:
            meta["continue"] = str(start + limit)
        return {"items": page, "metadata": meta}

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, *, query: Query, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[JSONObject]]:
        await asyncio.sleep(0)
        if self.down:
            raise ApiUnavailableError("down")
        if self.watch_errors:
            raise self.watch_errors.pop(0)
        watch = Watch(dict(query))
        self.watches.append(watch)
        self.watch_opened.set()
        yield _drain(watch)

    async def next_watch(self, count: int) -> Watch:
        """Wait until `count` watches have been opened (bounded by the test's own timeout)."""
        while len(self.watches) < count:
            self.watch_opened.clear()
            await self.watch_opened.wait()
        return self.watches[count - 1]

    def end_watches(self) -> None:
        for watch in self.watches:
            watch.events.put_nowait(None)


async def _drain(watch: Watch) -> AsyncIterator[JSONObject]:
    while True:
        item = await watch.events.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item

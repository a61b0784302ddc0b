"""An in-memory stand-in for the API server behind kube's ApiTransport seam.

Lists are paged like the real thing; a watch-list (sendInitialEvents) streams the objects, then the
bookmark that ends them, and counts as a list; each watch is then fed from a queue the test writes
to; failures are injected per call. Only what the informer and the probe use is modelled, plus a
create that echoes its object: the leader Lease is refused (the API's tests never lead), other
writes are recorded in `writes`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kube.errors import (
    AccessDeniedError,
    ApiUnavailableError,
    InvalidError,
    KubeError,
    NotFoundError,
)
from kube.informer import INITIAL_EVENTS_END

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from kube.client import JSONObject, Query
    from kube.informer import Informer


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
    path: str = ""
    # A watch-list's initial events, its end bookmark included; sent before `events`.
    initial: list[JSONObject] = field(default_factory=list)
    # Set once the informer asks for more than `initial`: it has applied all of it.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    cut: bool = False  # ends after `initial`, which lacks its end bookmark


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
        self.fail_paths: set[str] = set()  # lists of these paths fail
        self.refuse_watch_list = False  # as with the WatchList feature gate off: 422
        self.refused_watch_lists = 0
        self.cut_watch_list = False  # watch-lists end before their end bookmark
        # Sent after a watch-list's objects, before its end bookmark.
        self.initial_extras: list[JSONObject] = []
        self.writes: list[tuple[str, str, object]] = []

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
        if "/leases" in path:
            raise AccessDeniedError("leases are not modelled")
        if method != "GET":
            return self._write(method, path, body)
        query = dict(query or {})
        self._start_list(path, query)
        items = self.objects.get(path, [])
        start = int(str(query.get("continue") or 0))
        limit = int(str(query.get("limit") or 500))
        page = items[start : start + limit]
        more = start + limit < len(items)
        meta = {"resourceVersion": str(self.resource_version)}
        if more:
            meta["continue"] = str(start + limit)
        return {"items": page, "metadata": meta}

    def _start_list(self, path: str, query: dict[str, Any]) -> None:
        """Record a list (a page or a watch-list) and raise the failure injected for it, if any."""
        self.list_calls.append({"path": path, **query})
        if self.list_errors:
            raise self.list_errors.pop(0)
        if self.fail_lists or path in self.fail_paths:
            raise ApiUnavailableError("list fails")

    def _initial_events(self, path: str) -> list[JSONObject]:
        events = [{"type": "ADDED", "object": obj} for obj in self.objects.get(path, [])]
        events += self.initial_extras
        if self.cut_watch_list:
            return events
        meta = {
            "resourceVersion": str(self.resource_version),
            "annotations": {INITIAL_EVENTS_END: "true"},
        }
        return [*events, {"type": "BOOKMARK", "object": {"metadata": meta}}]

    def _write(self, method: str, path: str, body: object) -> JSONObject:
        """A create answers with its object, as stored; nothing else exists to change."""
        self.writes.append((method, path, body))
        if method != "POST" or not isinstance(body, dict):
            raise NotFoundError("not found")
        self.resource_version += 1
        meta = {"uid": f"uid-{len(self.writes)}", "generation": 1}
        meta |= {"resourceVersion": str(self.resource_version)}
        return {**body, "metadata": {**body.get("metadata", {}), **meta}}

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, *, query: Query, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[JSONObject]]:
        await asyncio.sleep(0)
        if self.down:
            raise ApiUnavailableError("down")
        if self.watch_errors:
            raise self.watch_errors.pop(0)
        watch = Watch(dict(query), path=path)
        if query.get("sendInitialEvents"):
            if self.refuse_watch_list:
                self.refused_watch_lists += 1
                raise InvalidError("sendInitialEvents is forbidden", status=422)
            self._start_list(path, watch.query)
            watch.initial = self._initial_events(path)
            watch.cut = self.cut_watch_list
        else:
            watch.ready.set()
        self.watches.append(watch)
        self.watch_opened.set()
        yield _drain(watch)

    async def next_watch(self, count: int) -> Watch:
        """Wait until `count` watches have been opened, and a watch-list's initial state applied
        (bounded by the test's own timeout)."""
        while len(self.watches) < count:
            self.watch_opened.clear()
            await self.watch_opened.wait()
        watch = self.watches[count - 1]
        await watch.ready.wait()
        return watch

    def end_watches(self) -> None:
        for watch in self.watches:
            watch.events.put_nowait(None)


async def _drain(watch: Watch) -> AsyncIterator[JSONObject]:
    for event in watch.initial:
        yield event
    if watch.cut:
        return
    watch.ready.set()
    while True:
        item = await watch.events.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(predicate: Callable[[], bool], spins: int = 2000) -> None:
    """Let the loop run until `predicate` holds; bounded so a broken test fails, not hangs."""
    for _ in range(spins):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


@contextlib.asynccontextmanager
async def running(informer: Informer[Any]) -> AsyncIterator[None]:
    task = asyncio.create_task(informer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

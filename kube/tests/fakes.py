"""An in-memory stand-in for the API server behind kube's ApiTransport seam.

Lists are paged like the real thing; each watch is fed from a queue the test writes to; failures
are injected per call. Only what the informer, the probe and the API's writes use is modelled. A
namespaced object lives in its all-namespaces collection (what the server's tests watch): GET of
one, POST (409 if it exists), merge PATCH and JSON PATCH (a failed `test` op is a 422, applied all
or nothing), each write bumping resourceVersion, a spec change the generation, and telling the
collection's watches. Every write is recorded in `writes` and then waits for `writes_released`. The
leader Lease is refused (the API's tests never lead). Status subresources, deletes and namespaced
lists of written objects are not modelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kube.client import JSON_PATCH, MERGE_PATCH
from kube.errors import (
    AccessDeniedError,
    ApiUnavailableError,
    ConflictError,
    InvalidError,
    KubeError,
    NotFoundError,
)
from kube.replicatargets import API_VERSION, KIND, REQUESTED_AT, REQUESTED_BY

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


def replica_target(
    ns: str,
    name: str,
    replicas: int,
    *,
    uid: str,
    generation: int = 1,
    requested_by: str = "",
    requested_at: str = "2026-01-02T03:04:05Z",
    conditions: list[JSONObject] | None = None,
) -> JSONObject:
    """A ReplicaTarget as the API server stores it (uid must be a UUID: it is half a version)."""
    meta = {"namespace": ns, "name": name, "uid": uid, "generation": generation}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            **meta,
            "resourceVersion": "1",
            "annotations": {REQUESTED_BY: requested_by, REQUESTED_AT: requested_at},
        },
        "spec": {"deploymentName": name, "replicas": replicas},
        "status": {"conditions": conditions or []},
    }


@dataclass
class Watch:
    query: dict[str, Any]
    events: asyncio.Queue[JSONObject | BaseException | None] = field(default_factory=asyncio.Queue)
    path: str = ""


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
        self.writes: list[tuple[str, str, object]] = []  # every write sent, answered or not
        self.gets: list[str] = []  # paths of GETs of one object
        # Cleared, writes wait here (recorded, not yet applied): calls in flight at shutdown.
        self.writes_released = asyncio.Event()
        self.writes_released.set()

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
        if method != "GET" and "/leases" not in path:
            self.writes.append((method, path, body))
            await self.writes_released.wait()
        if self.down:
            raise ApiUnavailableError("down")
        if path in ("/readyz", "/version"):
            return {}
        if "/leases" in path:
            raise AccessDeniedError("leases are not modelled")
        if method != "GET":
            return self._write(method, path, body, content_type)
        if _locate(path)[2]:
            self.gets.append(path)
            return copy.deepcopy(self._find(path)[1])
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
        """Record a list page and raise the failure injected for it, if any."""
        self.list_calls.append({"path": path, **query})
        if self.list_errors:
            raise self.list_errors.pop(0)
        if self.fail_lists or path in self.fail_paths:
            raise ApiUnavailableError("list fails")

    def _find(self, path: str) -> tuple[list[JSONObject], JSONObject]:
        """The stored object a namespaced object path names, and the collection holding it."""
        collection, namespace, name = _locate(path)
        items = self.objects.get(collection, [])
        for obj in items:
            meta = obj.get("metadata") or {}
            if (meta.get("namespace"), meta.get("name")) == (namespace, name):
                return items, obj
        raise NotFoundError("not found")

    def _write(self, method: str, path: str, body: object, content_type: str) -> JSONObject:
        """POST to a namespaced collection, PATCH of one of its objects; stored and watched."""
        collection, namespace, name = _locate(path)
        if method == "POST" and collection and not name and isinstance(body, dict):
            name = str(body.get("metadata", {}).get("name", ""))
            with contextlib.suppress(NotFoundError):
                self._find(f"{path}/{name}")
                raise ConflictError("already exists")
            meta = {"namespace": namespace, "uid": _uuid(self.resource_version), "generation": 1}
            stored = copy.deepcopy(body)
            stored["metadata"] = {**stored.get("metadata", {}), **meta}
            self.objects.setdefault(collection, []).append(stored)
            event, scope = "ADDED", path
        elif method == "PATCH" and name:
            items, current = self._find(path)
            if content_type == JSON_PATCH and isinstance(body, list):
                stored = _json_patch(current, body)
            elif content_type == MERGE_PATCH:
                stored = _merge_patch(copy.deepcopy(current), body)
            else:
                raise InvalidError("unsupported patch")
            # The server owns identity and generation: a patch cannot change them.
            meta = current["metadata"]
            spec_changed = stored.get("spec") != current.get("spec")
            stored["metadata"] |= {
                "uid": meta["uid"],
                "generation": meta["generation"] + int(spec_changed),
            }
            items[items.index(current)] = stored
            event, scope = "MODIFIED", path.rsplit("/", 1)[0]
        else:
            raise NotFoundError("not modelled")
        self.resource_version += 1
        stored["metadata"]["resourceVersion"] = str(self.resource_version)
        for watch in self.watches:  # of all namespaces, or of this one
            if watch.path in (collection, scope):
                watch.events.put_nowait({"type": event, "object": copy.deepcopy(stored)})
        return copy.deepcopy(stored)

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


def _locate(path: str) -> tuple[str, str, str]:
    """(all-namespaces collection, namespace, name or "") of a namespaced path, else empty."""
    head, namespaced, rest = path.partition("/namespaces/")
    parts = rest.split("/")
    if not namespaced or len(parts) not in (2, 3):
        return "", "", ""
    return f"{head}/{parts[1]}", parts[0], parts[2] if len(parts) == 3 else ""


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, into `target` in place: objects merge key by key, null deletes, else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _json_patch(target: JSONObject, ops: list[Any]) -> JSONObject:
    """RFC 6902's test, add and replace on object members; any failure rejects the whole patch."""
    out = copy.deepcopy(target)
    for op in ops:
        *parents, last = [
            part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]
        ]
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or (op["op"] != "add" and last not in node):
            raise InvalidError(f"no path {op['path']}")
        if op["op"] == "test" and node[last] != op["value"]:
            raise InvalidError(f"test failed at {op['path']}")
        if op["op"] in ("add", "replace"):
            node[last] = copy.deepcopy(op["value"])
        elif op["op"] != "test":
            raise InvalidError(f"op {op['op']} is not modelled")
    return out


async def _drain(watch: Watch) -> AsyncIterator[JSONObject]:
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

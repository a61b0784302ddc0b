"""A generic asyncio list+watch cache ("informer"): the watch-based cache every read answers from.

Requirement: Get/List never cost an API call, and the reconciler reads the cluster from memory.
How it lists, watches, relists on 410 and backs off (client-go's reflector), and why not the
`kubernetes` client's informer: docs/design.md ("Caching"). It keeps frozen views, never whole
objects; an object its converter cannot read is logged and left out.
TODO: a watch-list (sendInitialEvents) start once `make bench` shows the list costs.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from kube.backoff import Backoff
from kube.client import ApiTransport, JSONObject
from kube.errors import (
    ApiUnavailableError,
    KubeError,
    NotFoundError,
    ResourceExpiredError,
    from_status,
)
from kube.fields import int_or_zero

V = TypeVar("V")
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds
Converter = Callable[[JSONObject], V]
Subscriber = Callable[[Key, V | None, V | None], None]

log = logging.getLogger(__name__)

# client-go's jittered watch timeouts; a silent (half-open) connection fails a margin later.
WATCH_TIMEOUT_S: Final = (300, 600)
READ_TIMEOUT_MARGIN_S: Final = 15.0
# A watch that ends sooner having delivered nothing is a failure (so a proxy cannot make us spin).
MIN_WATCH_S: Final = 1.0
# A cache failing this long stops counting as synced (readiness), well before it is badly behind.
STALE_AFTER_S: Final = 8.0

# A 404 on a collection: the kind is not served (for ReplicaTargets a missing CRD), say so.
_NOT_SERVED = (
    "resource not served by the API server (is its CustomResourceDefinition installed?);"
    " not ready until it is, retrying"
)


class Informer(Generic[V]):
    """List+watch one collection path into an in-memory map of frozen views."""

    def __init__(
        self,
        api: ApiTransport,
        *,
        resource: str,
        path: str,
        convert: Converter[V],
        page_size: int = 500,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resource = resource
        self.path = path
        self._api = api
        self._convert = convert
        self._page_size = page_size
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._store: dict[Key, V] = {}
        self._sorted_keys: list[Key] | None = None
        self._subscribers: list[Subscriber[V]] = []
        self._listed = False
        self._failing_since: float | None = None
        # Of the last list or event applied; None means "list first". An attribute, not a
        # local of the watch, so a watch that fails mid-stream does not rewind the next one.
        self._resource_version: str | None = None
        self._retry = asyncio.Event()

    # -- reads (never touch the network) ------------------------------------------------------

    def get(self, key: Key) -> V | None:
        return self._store.get(key)

    def items_after(self, after: Key | None, limit: int) -> list[tuple[Key, V]]:
        """Up to `limit` items in key order, strictly after `after`, read by C loops: a List page
        reads hundreds, and a Python step per item cost more than serializing it (`make bench`).
        The sorted keys are rebuilt lazily after a key came or went."""
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self._store)
        keys = self._sorted_keys
        start = 0 if after is None else bisect.bisect_right(keys, after)
        chunk = keys[start : start + limit]
        return list(zip(chunk, map(self._store.__getitem__, chunk), strict=True))

    def __len__(self) -> int:
        return len(self._store)

    @property
    def synced(self) -> bool:
        """Listed once, and not failing for STALE_AFTER_S or more."""
        if not self._listed:
            return False
        failing = self._failing_since
        return failing is None or self._clock() - failing < STALE_AFTER_S

    @property
    def current_as_of(self) -> float | None:
        """Clock time up to which the cache is known current; None before its first full list.

        Now while list/watch is healthy; while it fails, the moment it started failing (a watch
        that was open until then had delivered every change made before it).
        TODO: a watch on a half-open connection that the probe's own connections do not share
        looks current until its read timeout; bound that by the last bookmark received."""
        if not self._listed:
            return None
        return self._clock() if self._failing_since is None else self._failing_since

    def retry_now(self) -> None:
        """Retry at once and back off from the start: the API server answers again (one that
        has just restarted may refuse a few calls, which must not cost an outage's long delay)."""
        self._backoff.reset()
        self._retry.set()

    def subscribe(self, subscriber: Subscriber[V]) -> None:
        """Call `subscriber(key, old, new)` on every change."""
        self._subscribers.append(subscriber)

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """List, then watch, forever (until cancelled); relist on 410, back off on errors."""
        while True:
            try:
                # Watch from the last resourceVersion applied; without one, list first.
                if self._resource_version is None:
                    self._resource_version = await self._list()
                await self._watch(self._resource_version)
            except ResourceExpiredError:
                log.info("resource version expired, relisting", extra={"resource": self.resource})
                self._resource_version = None
                # Short after a watch that delivered events (that reset the backoff); it only
                # grows if the server keeps answering 410 right away.
                await self._pause(self._backoff.next_delay())
            except KubeError as exc:
                if self._failing_since is None:
                    self._failing_since = self._clock()
                delay = self._backoff.next_delay()
                log.warning(
                    _NOT_SERVED
                    if isinstance(exc, NotFoundError)
                    else "list/watch failed, retrying",
                    extra={
                        "resource": self.resource,
                        "path": self.path,
                        "error": str(exc),
                        "delay_s": round(delay, 3),
                    },
                )
                await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        """Sleep `delay`, or less if `retry_now()` is called (also just before the pause)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._retry.wait()
        self._retry.clear()

    async def _list(self) -> str:
        items: dict[Key, V] = {}
        continue_token = ""
        for _ in range(1_000_000):  # bounded: a list cannot have more pages than this
            query: dict[str, str | int] = {"limit": self._page_size}
            if continue_token:
                query["continue"] = continue_token
            page = await self._api.request("GET", self.path, query=query)
            for obj in page.get("items") or []:
                key, view = self._view(obj)
                if view is not None:
                    items[key] = view
            meta = page.get("metadata") or {}
            continue_token = meta.get("continue") or ""
            if not continue_token:
                self._replace(items)
                return str(meta.get("resourceVersion", ""))
        raise KubeError("list did not finish")

    async def _watch(self, resource_version: str) -> None:
        """One watch from `resource_version`; raises if it ended at once with nothing delivered."""
        timeout_seconds = random.randint(*WATCH_TIMEOUT_S)  # noqa: S311 - jitter, not crypto
        query: dict[str, str | int] = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
            "resourceVersion": resource_version,
        }
        read_timeout = timeout_seconds + READ_TIMEOUT_MARGIN_S
        delivered = False
        async with self._api.stream(self.path, query=query, read_timeout=read_timeout) as events:
            opened, failing_before = self._clock(), self._failing_since
            self._failing_since = None  # the API server answered
            try:
                async for event in events:
                    if (rv := self._apply(event)) is not None:
                        self._resource_version = rv
                    if not delivered:
                        delivered = True
                        self._backoff.reset()
            except KubeError:
                if not delivered:
                    self._failing_since = failing_before  # no contact worth the name
                raise
        if not delivered and self._clock() - opened < MIN_WATCH_S:
            # Keep counting the outage from where it began, then back off like any failure.
            self._failing_since = failing_before
            raise ApiUnavailableError("watch ended at once without an event")

    # -- store updates --------------------------------------------------------------------------

    def _apply(self, event: JSONObject) -> str | None:
        kind, obj = _unpack(event)
        meta = obj.get("metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if kind in ("ADDED", "MODIFIED"):
            key, new = self._view(obj)
            if new is None:
                self._remove(key)  # unreadable now: the older view would be served as current
            else:
                old = self._store.get(key)
                if old is None:
                    self._sorted_keys = None
                self._store[key] = new
                self._notify(key, old, new)
        elif kind == "DELETED":
            self._remove(_key(obj))
        return str(rv) if rv else None

    def _view(self, obj: JSONObject) -> tuple[Key, V | None]:
        """The object's key and view; None as the view if the converter cannot read it."""
        key = _key(obj)
        try:
            if not key[1]:
                raise ValueError("object has no name")
            return key, self._convert(obj)
        except Exception as exc:  # noqa: BLE001 - one bad object must not stop the cache
            # The error type only: the object's contents do not belong in logs.
            log.warning(
                "object cannot be read; left out of the cache",
                extra={
                    "resource": self.resource,
                    "key": "/".join(key),
                    "error": type(exc).__name__,
                },
            )
            return key, None

    def _remove(self, key: Key) -> None:
        old = self._store.pop(key, None)
        if old is not None:
            self._sorted_keys = None
            self._notify(key, old, None)

    def _replace(self, items: dict[Key, V]) -> None:
        old_store, self._store, self._sorted_keys = self._store, items, None
        self._listed = True
        self._failing_since = None
        for key, old in old_store.items():
            if key not in items:
                self._notify(key, old, None)
        for key, new in items.items():
            previous = old_store.get(key)
            if previous != new:
                self._notify(key, previous, new)

    def _notify(self, key: Key, old: V | None, new: V | None) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(key, old, new)
            except Exception:  # a subscriber bug must not stop the cache
                log.exception("informer subscriber failed", extra={"resource": self.resource})


def _unpack(event: JSONObject) -> tuple[object, JSONObject]:
    """A watch event's type and object; an ERROR event raises its status as a KubeError."""
    kind, obj = event.get("type"), event.get("object")
    if not isinstance(obj, dict):
        obj = {}
    if kind == "ERROR":
        raise from_status(int_or_zero(obj.get("code")))
    return kind, obj


def _key(obj: JSONObject) -> Key:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return "", ""
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")

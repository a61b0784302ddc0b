"""One cache over one informer per watched namespace (or one for all namespaces).

Requirement: namespace-scoped RBAC with `--namespaces a,b`: replicant may not list cluster-wide,
so it runs an informer per namespace; callers see one map keyed by (namespace, name) either way,
walked in key order for ListDeployments' pages.
"""

from __future__ import annotations

import bisect
import itertools
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from kube.informer import Converter, Informer, Key

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from kube.client import ApiTransport

V = TypeVar("V")
CHUNK: Final = 512  # items read at once (a List page is at most 501)


def collection_path(group: str, version: str, plural: str, namespace: str | None) -> str:
    """Collection path, e.g. /apis/apps/v1/namespaces/ns/deployments (group "" is core: /api/v1)."""
    prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{scope}/{plural}"


class InformerGroup(Generic[V]):
    """One logical cache over one informer per watched namespace (or one for all namespaces)."""

    def __init__(
        self,
        api: ApiTransport,
        api_version: str,
        plural: str,
        namespaces: Sequence[str],
        convert: Converter[V],
    ) -> None:
        """api_version as in a manifest ("apps/v1", "v1"), e.g. ("apps/v1", "deployments")."""
        group, _, version = api_version.rpartition("/")
        scopes: list[str | None] = [*sorted(namespaces)] or [None]  # in order: see iter_from
        self.informers = [
            Informer(
                api,
                resource=plural,
                path=collection_path(group, version, plural, ns),
                convert=convert,
            )
            for ns in scopes
        ]
        self._by_namespace = dict(zip(sorted(namespaces), self.informers, strict=False))

    @property
    def synced(self) -> bool:
        return all(informer.synced for informer in self.informers)

    def watches(self, namespace: str) -> bool:
        return not self._by_namespace or namespace in self._by_namespace

    def get(self, key: Key) -> V | None:
        informer = self._informer_for(key[0])
        return None if informer is None else informer.get(key)

    def __len__(self) -> int:
        return sum(len(informer) for informer in self.informers)

    def iter_from(self, after: Key | None, namespace: str = "") -> Iterator[tuple[Key, V]]:
        """Items in (namespace, name) order, strictly after `after`, optionally one namespace."""
        if namespace:
            informer = self._informer_for(namespace)
            start = max(after, (namespace, "")) if after else (namespace, "")
            return iter(()) if informer is None else _scan(informer, start, namespace)
        # One informer for all namespaces, or one per namespace in namespace order: both in order.
        return itertools.chain.from_iterable(_scan(inf, after) for inf in self.informers)

    def _informer_for(self, namespace: str) -> Informer[V] | None:
        if not self._by_namespace:
            return self.informers[0] if self.informers else None
        return self._by_namespace.get(namespace)


def _scan(informer: Informer[V], after: Key | None, namespace: str = "") -> Iterator[tuple[Key, V]]:
    """The informer's items in key order, strictly after `after` and in `namespace` if given."""

    def chunks(after: Key | None) -> Iterator[list[tuple[Key, V]]]:
        while chunk := informer.items_after(after, CHUNK):
            if namespace and chunk[-1][0][0] != namespace:  # the namespace ends in this chunk
                yield chunk[: bisect.bisect_right(chunk, namespace, key=lambda item: item[0][0])]
                return
            yield chunk
            after = chunk[-1][0]  # by key, not position: keys may change between chunks

    return itertools.chain.from_iterable(chunks(after))

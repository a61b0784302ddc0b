"""Pre-encoded Deployments: GetReplicas and ListDeployments answer by joining cached bytes.

Why: building a `Deployment` message per listed object on every call, then copying it into the
response, was most of a List page's CPU, although every view behind it is frozen. A Deployment's
encoding depends only on its DeploymentView and its DesiredStateView, and the caches replace a view
(a new object) whenever it changes. So each encoding is kept with the two views it was made from and
used only while both are still the very same objects; the informer's subscribe hook drops the entry
of a Deployment that changed or went (`forget`), so no entry outlives its object.

An entry is stored framed as field 1 (tag, length, bytes): GetReplicasResponse.deployment and
ListDeploymentsResponse.deployments are both field 1, so a response is a join of framed entries and
its later fields in field order, which is exactly what SerializeToString writes for the same message
(server/tests/test_encoding.py holds `deployment_message` and the response messages as the oracle).
The servicer returns these bytes and its handlers have no response serializer (server/servicer.py).

Pages are kept too: a dashboard polls the same pages of an unchanged cache, and joining 500 entries
costs as much again as sending them. A page's body is reused only until anything changes in the
Deployment or ReplicaTarget caches (`forget`, `changed`: every kept page goes), and at most
MAX_PAGES bodies are kept, so a page can never show a state the caches have left and the memory
stays a few MiB. Tokens and as_of are added per call.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from replicant.v1 import replicant_pb2 as pb

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from kube.informer import Key
    from kube.views import DeploymentView, DesiredStateView

# Wire tags (field number << 3 | 2, length-delimited) of the response fields written here.
_DEPLOYMENT: Final = b"\x0a"  # GetReplicasResponse.deployment, ListDeploymentsResponse.deployments
_GET_AS_OF: Final = b"\x12"  # GetReplicasResponse.as_of
_LIST_TOKEN: Final = b"\x12"  # ListDeploymentsResponse.next_page_token
_LIST_AS_OF: Final = b"\x1a"  # ListDeploymentsResponse.as_of
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Page bodies kept at once: at most 500 entries of ~40 bytes each, so about 1.3 MiB.
MAX_PAGES: Final = 64
Page = tuple[bytes, "Key | None"]  # the joined entries, and the last key if another page follows


class EncodedDeployments:
    """Framed `Deployment` encodings by key, valid while their two views are the same objects."""

    def __init__(self) -> None:
        self._entries: dict[Key, tuple[DeploymentView, DesiredStateView | None, bytes]] = {}
        self._pages: dict[Hashable, Page] = {}

    def framed(self, view: DeploymentView, desired: DesiredStateView | None) -> bytes:
        key = (view.namespace, view.name)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is view and entry[1] is desired:
            return entry[2]
        framed = _field(_DEPLOYMENT, deployment_message(view, desired).SerializeToString())
        self._entries[key] = (view, desired, framed)
        return framed

    def page(self, memo: Hashable, build: Callable[[], Page]) -> Page:
        """The page body kept under `memo` (what selects the page), else `build()`, kept."""
        kept = self._pages.get(memo)
        if kept is None:
            if len(self._pages) >= MAX_PAGES:
                self._pages.clear()
            kept = self._pages[memo] = build()
        return kept

    def forget(self, key: Key, old: object, new: object) -> None:
        """Deployment informer subscriber: the Deployment changed or went, so its entry is stale."""
        self._entries.pop(key, None)
        self.changed(key, old, new)

    def changed(self, key: Key, old: object, new: object) -> None:
        """Informer subscriber (ReplicaTargets too): kept pages may show the old state."""
        del key, old, new
        self._pages.clear()

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def get_response(framed: bytes, as_of: datetime | None) -> bytes:
    """GetReplicasResponse bytes: the framed Deployment, then as_of."""
    return framed if as_of is None else framed + _as_of_field(_GET_AS_OF, as_of)


def list_response(body: bytes, next_page_token: str, as_of: datetime | None) -> bytes:
    """ListDeploymentsResponse bytes: the joined framed Deployments, next_page_token, as_of."""
    parts = [body]
    if next_page_token:  # proto3: an empty string is not written
        parts.append(_field(_LIST_TOKEN, next_page_token.encode()))
    if as_of is not None:
        parts.append(_as_of_field(_LIST_AS_OF, as_of))
    return b"".join(parts)


def deployment_message(view: DeploymentView, desired: DesiredStateView | None) -> pb.Deployment:
    message = pb.Deployment(
        ref=pb.DeploymentRef(namespace=view.namespace, name=view.name),
        current=pb.CurrentState(
            spec_replicas=view.spec_replicas,
            replicas=view.replicas,
            ready_replicas=view.ready_replicas,
            available_replicas=view.available_replicas,
            updated_replicas=view.updated_replicas,
            generation=view.generation,
            observed_generation=view.observed_generation,
        ),
    )
    if desired is not None:
        message.desired.CopyFrom(desired_message(desired))
    return message


def desired_message(view: DesiredStateView) -> pb.DesiredState:
    message = pb.DesiredState(
        replicas=view.replicas, requested_by=view.requested_by, version=view.version
    )
    if view.requested_at is not None:
        message.requested_at.FromDatetime(view.requested_at)
    if view.reconcile is not None:
        message.reconcile.CopyFrom(
            pb.ReconcileStatus(
                converged=view.reconcile.converged,
                reason=view.reconcile.reason,
                message=view.reconcile.message,
                observed_generation=view.reconcile.observed_generation,
            )
        )
    return message


@functools.lru_cache(maxsize=8)
def _as_of_field(tag: bytes, at: datetime) -> bytes:
    """An as_of field, encoded once per as_of: Readiness returns the same one between probes."""
    return _field(tag, _timestamp(at))


def _timestamp(at: datetime) -> bytes:
    """google.protobuf.Timestamp bytes, as FromDatetime + SerializeToString (a fifth the cost)."""
    if at.tzinfo is None:  # naive: UTC, as FromDatetime reads it
        at = at.replace(tzinfo=UTC)
    delta = at - _EPOCH
    seconds, nanos = delta.days * 86_400 + delta.seconds, delta.microseconds * 1000
    return (b"\x08" + _varint(seconds) if seconds else b"") + (
        b"\x10" + _varint(nanos) if nanos else b""
    )


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    value &= 0xFFFF_FFFF_FFFF_FFFF  # a negative int64 is written as its 64-bit two's complement
    if value < 0x80:  # every field but a page of many Deployments
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)

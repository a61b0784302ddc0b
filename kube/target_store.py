"""SetReplicas' write: create or update a Deployment's ReplicaTarget, compare-and-set.

Requirement: SetReplicas stores the desired count, optionally only if unchanged since a read
(expected_version). Raises only kube/errors.py's hierarchy; server/status.py maps it to gRPC.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Final

from kube.client import JSON_PATCH, MERGE_PATCH
from kube.desired import desired_state_view, is_version, version_of
from kube.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    NotSyncedError,
    PreconditionError,
    StaleVersionError,
)
from kube.replicatargets import (
    API_VERSION,
    KIND,
    REQUESTED_AT,
    REQUESTED_BY,
    format_time,
    object_path,
    parse_replica_target,
    target_collection_path,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from kube.autoscalers import Autoscalers
    from kube.client import ApiTransport, JSONObject
    from kube.informer import Key
    from kube.views import DesiredStateView

# Unconditional writes: a create that races another (409 AlreadyExists) is retried as a patch.
SET_ATTEMPTS: Final = 3


class ReplicaTargetStore:
    """Create or update the ReplicaTarget of a Deployment (what SetReplicas calls): last writer
    wins, or compare-and-set with an expected version; refused while an HPA scales the Deployment
    (the reconciler would never apply the count). The rules: docs/design.md, "Errors"."""

    def __init__(
        self,
        api: ApiTransport,
        autoscalers: Autoscalers,
        clock: Callable[[], datetime.datetime] | None = None,
    ):
        self._api = api
        self._autoscalers = autoscalers
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))

    async def set(
        self, key: Key, replicas: int, requested_by: str, expected_version: str
    ) -> DesiredStateView:
        namespace, name = key
        self._refuse_if_autoscaled(key)
        annotations = {REQUESTED_BY: requested_by, REQUESTED_AT: format_time(self._clock())}
        if expected_version:
            if not is_version(expected_version):  # the API validates it first; never compare
                raise StaleVersionError("not a version of this object")
            return await self._compare_and_set(key, replicas, annotations, expected_version)
        for _ in range(SET_ATTEMPTS):
            try:
                stored = await self._patch(key, replicas, annotations)
            except NotFoundError:
                try:
                    stored = await self._create(key, replicas, annotations)
                except ConflictError:
                    continue  # created by someone else meanwhile: patch it
            return desired_state_view(parse_replica_target(stored))
        raise ConflictError(f"replica target {namespace}/{name} kept changing; try again")

    def _refuse_if_autoscaled(self, key: Key) -> None:
        if not self._autoscalers.synced:
            # Readiness does not wait for it (only the reconciler reads it otherwise).
            raise NotSyncedError("autoscaler cache not synced")
        if (hpa := self._autoscalers.targeting(key)) is not None:
            raise PreconditionError(
                f"deployment {key[0]}/{key[1]} is scaled by HorizontalPodAutoscaler {hpa};"
                " change the autoscaler, or delete it to set the count here"
            )

    async def _compare_and_set(
        self, key: Key, replicas: int, annotations: dict[str, str], expected: str
    ) -> DesiredStateView:
        """Write only if the target is still the object and spec `expected` names: a JSON patch
        whose first ops `test` metadata.uid and generation, applied atomically by the API server,
        so status writes in between cannot fail it (they move resourceVersion, not generation)."""
        current = await self._read_for_version(key)
        view = parse_replica_target(current)
        if version_of(view) != expected:
            raise StaleVersionError("replica target is not at that version")
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/uid", "value": view.uid},
            {"op": "test", "path": "/metadata/generation", "value": view.generation},
            {"op": "replace", "path": "/spec/replicas", "value": replicas},
            *_annotation_ops(current, annotations),
        ]
        try:
            stored = await self._api.request(
                "PATCH", object_path(*key), body=ops, content_type=JSON_PATCH
            )
        except NotFoundError as e:
            raise _no_target(key) from e
        except InvalidError as e:
            # A failed `test` is a 422, and so is any other refusal: read again to tell which.
            # The object was at `expected` just before; generations only grow and a uid never
            # returns, so if it still is, the tests passed and something else was refused.
            if version_of(parse_replica_target(await self._read_for_version(key))) != expected:
                raise StaleVersionError("replica target changed before the write") from e
            raise
        return desired_state_view(parse_replica_target(stored))

    async def _read_for_version(self, key: Key) -> JSONObject:
        try:
            return await self._api.request("GET", object_path(*key))
        except NotFoundError as e:
            raise _no_target(key) from e

    async def _patch(self, key: Key, replicas: int, annotations: dict[str, str]) -> JSONObject:
        body = {"metadata": {"annotations": annotations}, "spec": {"replicas": replicas}}
        return await self._api.request(
            "PATCH", object_path(*key), body=body, content_type=MERGE_PATCH
        )

    async def _create(self, key: Key, replicas: int, annotations: dict[str, str]) -> JSONObject:
        namespace, name = key
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": {"deploymentName": name, "replicas": replicas},
        }
        return await self._api.request("POST", target_collection_path(namespace), body=body)


def _no_target(key: Key) -> PreconditionError:
    return PreconditionError(
        f"deployment {key[0]}/{key[1]} has no desired state to compare expected_version with;"
        " send it without expected_version to create one"
    )


def _annotation_ops(obj: JSONObject, annotations: dict[str, str]) -> list[dict[str, Any]]:
    """JSON-patch ops that set `annotations` and keep any others the object has."""
    if not (obj.get("metadata") or {}).get("annotations"):
        return [{"op": "add", "path": "/metadata/annotations", "value": annotations}]
    # JSON pointer escaping: "~" -> "~0", "/" -> "~1" (annotation keys contain a "/").
    return [
        {"op": "add", "path": "/metadata/annotations/" + k.replace("~", "~0").replace("/", "~1"),
         "value": v}
        for k, v in annotations.items()
    ]  # fmt: skip

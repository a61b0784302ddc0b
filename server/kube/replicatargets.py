"""ReplicaTarget custom resources: the typed view, and the writes (spec and status).

SetReplicas records desired state here and the reconciler reads it back from the
informer cache, so both sides share one parser and one serializer. Kubernetes API
errors are mapped to the domain hierarchy before they leave this module.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from server.kube.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    NotSyncedError,
    PreconditionError,
    StaleVersionError,
)
from server.kube.fields import int_or_zero, optional_int, parse_time
from server.kube.resources import InformerGroup, collection_path
from server.kube.views import DesiredStateView, ReconcileView

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from server.kube.client import ApiTransport, JSONObject
    from server.kube.informer import Key

GROUP: Final = "replicant.dev"
VERSION: Final = "v1alpha1"
PLURAL: Final = "replicatargets"
KIND: Final = "ReplicaTarget"
API_VERSION: Final = f"{GROUP}/{VERSION}"
REQUESTED_BY: Final = "replicant.dev/requested-by"
REQUESTED_AT: Final = "replicant.dev/requested-at"
# The condition the API mirrors as DesiredState.reconcile (reconciler/conditions.py sets it).
RECONCILED: Final = "Reconciled"

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    """One entry of status.conditions (Kubernetes API conventions)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: datetime.datetime
    observed_generation: int


@dataclass(frozen=True)
class TargetStatus:
    """status of a ReplicaTarget, written only by the reconciler."""

    observed_generation: int = 0
    conditions: tuple[Condition, ...] = ()
    last_applied_replicas: int | None = None
    deployment_uid: str = ""
    replicas: int | None = None
    ready_replicas: int | None = None


@dataclass(frozen=True)
class ReplicaTargetView:
    """What replicant needs of one ReplicaTarget, immutable so cache readers cannot race."""

    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    replicas: int
    requested_by: str = ""
    requested_at: datetime.datetime | None = None
    status: TargetStatus = field(default_factory=TargetStatus)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def format_time(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serializes."""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_condition(raw: Mapping[str, Any]) -> Condition | None:
    status = raw.get("status")
    when = parse_time(raw.get("lastTransitionTime"))
    if status not in ("True", "False", "Unknown") or when is None:
        return None
    return Condition(
        type=str(raw.get("type", "")),
        status=status,
        reason=str(raw.get("reason", "")),
        message=str(raw.get("message", "")),
        last_transition_time=when,
        observed_generation=int_or_zero(raw.get("observedGeneration")),
    )


def _parse_status(raw: Mapping[str, Any]) -> TargetStatus:
    conditions = tuple(
        c for c in (_parse_condition(item) for item in raw.get("conditions") or ()) if c is not None
    )
    return TargetStatus(
        observed_generation=int_or_zero(raw.get("observedGeneration")),
        conditions=conditions,
        last_applied_replicas=optional_int(raw.get("lastAppliedReplicas")),
        deployment_uid=str(raw.get("deploymentUID") or ""),
        replicas=optional_int(raw.get("replicas")),
        ready_replicas=optional_int(raw.get("readyReplicas")),
    )


def parse_replica_target(raw: Mapping[str, Any]) -> ReplicaTargetView:
    """Build the view from the API's JSON (the CRD schema guarantees the spec's shape)."""
    meta: Mapping[str, Any] = raw.get("metadata") or {}
    spec: Mapping[str, Any] = raw.get("spec") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    return ReplicaTargetView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        generation=int_or_zero(meta.get("generation")),
        resource_version=str(meta.get("resourceVersion", "")),
        replicas=int_or_zero(spec.get("replicas")),
        requested_by=annotations.get(REQUESTED_BY, ""),
        requested_at=parse_time(annotations.get(REQUESTED_AT)),
        status=_parse_status(raw.get("status") or {}),
    )


def status_body(status: TargetStatus) -> dict[str, Any]:
    """status as a merge patch: unset optional fields are null, which removes them."""
    body: dict[str, Any] = {
        "observedGeneration": status.observed_generation,
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": format_time(c.last_transition_time),
                "observedGeneration": c.observed_generation,
            }
            for c in status.conditions
        ],
    }
    body["deploymentUID"] = status.deployment_uid or None
    body["lastAppliedReplicas"] = status.last_applied_replicas
    body["replicas"] = status.replicas
    body["readyReplicas"] = status.ready_replicas
    return body


# -- paths ----------------------------------------------------------------------------------------


def object_path(namespace: str, name: str) -> str:
    return f"{_collection_path(namespace)}/{name}"


def _collection_path(namespace: str) -> str:
    return collection_path(GROUP, VERSION, PLURAL, namespace)


# -- the API's view of desired state ------------------------------------------------------------


# metadata.uid (a UUID, as the API server makes them) and metadata.generation (1 .. 2**63-1).
_VERSION = re.compile(
    r"(?P<uid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(?P<gen>[1-9][0-9]{0,18})"
)
_MAX_GENERATION: Final = 2**63 - 1


@dataclass(frozen=True)
class Version:
    """One spec of one ReplicaTarget: which object (uid) and which of its specs (generation).

    Generation alone is not enough: after a delete and re-create the count starts again at 1,
    and a version read from the old object would pass a compare-and-set on the new one (ABA).
    """

    uid: str
    generation: int

    def __str__(self) -> str:
        return f"{self.uid}:{self.generation}"


def parse_version(text: str) -> Version | None:
    """The Version that `str(version)` spelled, or None for anything else."""
    match = _VERSION.fullmatch(text)
    if match is None or int(match["gen"]) > _MAX_GENERATION:
        return None
    return Version(match["uid"], int(match["gen"]))


def version_of(target: ReplicaTargetView) -> str:
    """DesiredState.version (see ReplicaTargetStore._compare_and_set for why uid:generation)."""
    return str(Version(target.uid, target.generation))


def desired_state_view(target: ReplicaTargetView) -> DesiredStateView:
    """What Get/List/Set show: the spec, who asked, the version and the Reconciled condition."""
    reconciled = next((c for c in target.status.conditions if c.type == RECONCILED), None)
    reconcile = (
        None
        if reconciled is None
        else ReconcileView(
            # A True condition about an older spec says nothing about this one.
            converged=reconciled.status == "True"
            and reconciled.observed_generation == target.generation,
            reason=reconciled.reason,
            message=reconciled.message,
            observed_generation=reconciled.observed_generation,
        )
    )
    return DesiredStateView(
        replicas=target.replicas,
        requested_by=target.requested_by,
        requested_at=target.requested_at,
        version=version_of(target),
        reconcile=reconcile,
    )


class DesiredStates:
    """DesiredStateLookup (server/ports.py) over the ReplicaTarget informers: no API calls."""

    def __init__(self, targets: InformerGroup[ReplicaTargetView]) -> None:
        self._targets = targets

    @property
    def synced(self) -> bool:
        return bool(self._targets.synced)

    def get(self, key: Key) -> DesiredStateView | None:
        target = self._targets.get(key)
        return None if target is None else desired_state_view(target)


# -- writes ----------------------------------------------------------------------------------------

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
# Unconditional writes: a create can race another writer's create (409 AlreadyExists); the
# retry then patches. Three attempts cover any realistic race without looping.
SET_ATTEMPTS: Final = 3


class Autoscalers(Protocol):
    """Which HorizontalPodAutoscaler scales a Deployment, from a cache (no API calls)."""

    @property
    def synced(self) -> bool: ...

    def targeting(self, deployment: Key) -> str | None: ...


class ReplicaTargetStore:
    """DesiredStateStore (server/ports.py): create or update the ReplicaTarget of a Deployment.

    With an expected version the write happens only if the spec is still at that version
    (StaleVersionError -> ABORTED otherwise); with no target at all there is nothing to compare
    (PreconditionError). Without one, the write is a merge patch with no precondition, i.e.
    last writer wins by construction; only the create-vs-create race can 409, and it is
    retried as a patch. A Deployment an HPA scales is refused (PreconditionError): the
    reconciler would never apply the count, so accepting it would be a lie.
    """

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
            expected = parse_version(expected_version)
            if expected is None:  # the API validates it first; never compare with garbage
                raise StaleVersionError("not a version of this object")
            return await self._compare_and_set(key, replicas, annotations, expected)
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
        self, key: Key, replicas: int, annotations: dict[str, str], expected: Version
    ) -> DesiredStateView:
        """Write only if the target is still the object and spec `expected` names.

        Why generation and not resourceVersion: the reconciler's status writes bump the
        resourceVersion within milliseconds of every Set, so a resourceVersion handed to a
        client is stale almost at once; generation moves only when the spec does. The uid
        pins the incarnation. The check runs inside the API server: a JSON patch whose first
        ops `test` metadata.uid and metadata.generation is applied atomically to the latest
        object, so status writes in between cannot fail it.
        """
        current = await self._read_for_version(key)
        if _version(current) != expected:
            raise StaleVersionError("replica target is not at that version")
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/uid", "value": expected.uid},
            {"op": "test", "path": "/metadata/generation", "value": expected.generation},
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
            if _version(await self._read_for_version(key)) != expected:
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
        return await self._api.request("POST", _collection_path(namespace), body=body)


async def write_status(api: ApiTransport, target: ReplicaTargetView, status: TargetStatus) -> None:
    """Merge-patch status, only if the target is unchanged since it was read (else 409).

    Unset optional fields are sent as null so the merge patch removes them; otherwise a stale
    count would stay and every reconcile would see a difference to write.
    """
    body = {
        "metadata": {"resourceVersion": target.resource_version},
        "status": status_body(status),
    }
    await api.request(
        "PATCH",
        object_path(target.namespace, target.name) + "/status",
        body=body,
        content_type=MERGE_PATCH,
    )


def replica_target_informers(
    api: ApiTransport, namespaces: Sequence[str]
) -> InformerGroup[ReplicaTargetView]:
    return InformerGroup.build(
        api,
        resource=PLURAL,
        group=GROUP,
        version=VERSION,
        plural=PLURAL,
        namespaces=namespaces,
        convert=parse_replica_target,
    )


def _version(obj: JSONObject) -> Version:
    meta = obj.get("metadata") or {}
    return Version(str(meta.get("uid") or ""), int_or_zero(meta.get("generation")))


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

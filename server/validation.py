"""Request validation (requirement: validate input): every field of every request is checked here
before any lookup.

Rules (docs/design.md): namespace is a DNS-1123 label (<= 63), name a DNS-1123 subdomain (<= 253),
replicas 0..1000, page_size 0..500 (0 means 100), expected_version one this API returned
(`uid:generation`, kube/replicatargets.py). Page tokens are checked by server/page_tokens.py.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from kube.desired import is_version
from server.errors import InvalidArgumentError

if TYPE_CHECKING:
    from kube.informer import Key
    from replicant.v1 import replicant_pb2

MIN_REPLICAS: Final = 0
MAX_REPLICAS: Final = 1000
MAX_PAGE_SIZE: Final = 500
DEFAULT_PAGE_SIZE: Final = 100

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_label(value: str) -> bool:
    return len(value) <= 63 and _LABEL.fullmatch(value) is not None


def is_subdomain(value: str) -> bool:
    return len(value) <= 253 and _SUBDOMAIN.fullmatch(value) is not None


def namespace(value: str) -> str:
    if not is_label(value):
        raise InvalidArgumentError("namespace must be a DNS-1123 label (lower case, <= 63 chars)")
    return value


def ref(message: replicant_pb2.DeploymentRef) -> Key:
    """(namespace, name) of a DeploymentRef, or InvalidArgumentError."""
    namespace(message.namespace)
    if not is_subdomain(message.name):
        raise InvalidArgumentError("name must be a DNS-1123 subdomain (lower case, <= 253 chars)")
    return message.namespace, message.name


def replicas(request: replicant_pb2.SetReplicasRequest) -> int:
    """The requested count. Absent is an error, not 0: an old client, a JSON mapper that drops
    zero values or a body without the field must not scale a Deployment to zero."""
    if not request.HasField("replicas"):
        raise InvalidArgumentError("replicas is required")
    value = request.replicas
    if not MIN_REPLICAS <= value <= MAX_REPLICAS:
        raise InvalidArgumentError(f"replicas must be {MIN_REPLICAS}..{MAX_REPLICAS}")
    return value


def expected_version(value: str) -> str:
    if value and not is_version(value):
        raise InvalidArgumentError(
            "expected_version is malformed; pass DesiredState.version back unchanged"
        )
    return value


def page_size(value: int) -> int:
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"page_size must be 0..{MAX_PAGE_SIZE} (0 means default)")
    return value or DEFAULT_PAGE_SIZE

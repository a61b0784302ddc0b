"""The one mapping from errors to gRPC status codes and caller-safe messages (requirement:
errors map once to the right gRPC status, with a message that leaks nothing).

API-layer errors carry messages written for callers. Kubernetes errors do not: their messages are
replaced by fixed texts here, and the unexpected ones (replicant's own RBAC, bugs) become INTERNAL
with a generic message while the caller-side interceptor logs the detail.
"""

from __future__ import annotations

import grpc

from kube import errors as kube
from server import errors

_API_CODES: dict[type[errors.ApiError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.DeploymentNotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.NotReadyError: grpc.StatusCode.UNAVAILABLE,
}
_KUBE: dict[type[kube.KubeError], tuple[grpc.StatusCode, str]] = {
    # Subclasses before their bases: the first match wins.
    kube.NotSyncedError: (grpc.StatusCode.UNAVAILABLE, "not ready: a cache is still syncing"),
    kube.ApiUnavailableError: (grpc.StatusCode.UNAVAILABLE, "Kubernetes API server unavailable"),
    kube.ResourceExpiredError: (grpc.StatusCode.UNAVAILABLE, "cache is resyncing; retry"),
    kube.StaleVersionError: (
        grpc.StatusCode.ABORTED,
        "expected_version is stale: the desired state changed since it was read; re-read",
    ),
    kube.ConflictError: (grpc.StatusCode.ABORTED, "the object changed concurrently; re-read"),
    kube.InvalidError: (grpc.StatusCode.INVALID_ARGUMENT, "rejected by Kubernetes validation"),
    kube.NotFoundError: (grpc.StatusCode.NOT_FOUND, "not found"),
}

INTERNAL = (grpc.StatusCode.INTERNAL, "internal error")


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """gRPC code and caller-safe message for any exception a handler raised."""
    if isinstance(exc, errors.ApiError):
        for kind, code in _API_CODES.items():
            if isinstance(exc, kind):
                return code, str(exc)
    if isinstance(exc, kube.PreconditionError):  # the one Kubernetes error replicant words itself
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, kube.KubeError):
        for kube_kind, status in _KUBE.items():
            if isinstance(exc, kube_kind):
                return status
    # AccessDeniedError (replicant's own RBAC) and anything unexpected: a server problem.
    return INTERNAL

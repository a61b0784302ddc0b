"""Errors of the API layer (requirement: errors map once to the right gRPC status): validation,
authorization, readiness, lookups.

    ApiError                      base; carries a message that is safe to show the caller
     ├── InvalidArgumentError     a request field breaks the contract (names, bounds, page token)
     ├── UnauthenticatedError     the connection does not meet the transport policy (TLS < 1.3)
     │    └── IdentityRefusedError  the client certificate names no acceptable identity
     ├── PermissionDeniedError    the caller's identity has no role for the method
     ├── DeploymentNotFoundError  not in the cache, or its namespace is not watched
     └── NotReadyError            caches not synced yet, or (writes) API server not answering

Kubernetes failures arrive as kube.errors.KubeError; server/status.py maps both families to
gRPC status codes, in that one place.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base of API-layer errors; str(error) is shown to the caller."""


class InvalidArgumentError(ApiError):
    pass


class UnauthenticatedError(ApiError):
    pass


class IdentityRefusedError(UnauthenticatedError):
    """`reason` is a short machine-readable label for logs and metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PermissionDeniedError(ApiError):
    pass


class DeploymentNotFoundError(ApiError):
    pass


class NotReadyError(ApiError):
    pass

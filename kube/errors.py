"""The one error hierarchy of the Kubernetes access layer: kubernetes/aiohttp errors stop here.

Every call into the API server goes through `kube`, which maps client-library failures once,
here, with `raise <KubeError subclass>(...) from exc`. Layers above only ever see:

    KubeError                  base: talking to the API server went wrong
     ├── ApiUnavailableError   connection refused/reset, timeouts, 429, 5xx: retry with backoff
     │    └── NotSyncedError      a cache the answer needs has not listed yet: retry shortly
     ├── ResourceExpiredError  410 Gone / "too old resource version": relist, then watch again
     ├── NotFoundError         404: the object (or namespace) does not exist
     ├── ConflictError         409: AlreadyExists, or a stale resourceVersion on a conditional write
     │    └── StaleVersionError   a compare-and-set's expected version is no longer the object's
     ├── InvalidError          400/422: the API server (a CRD schema or CEL rule) refused it
     ├── AccessDeniedError     401/403: replicant's own credentials or RBAC are wrong: a server bug
     └── PreconditionError     the write cannot apply as asked (no object to compare a version
                               with, an HPA owns the count); raised by kube, not the server

The client libraries are imported only when an exception is mapped (any exception of theirs means
they are loaded already): `kubernetes` alone takes a third of a second to import, and modules that
only need these classes (the server's configuration, tests) should not pay for it.

Messages are short and generic on purpose: raw API error bodies can carry object contents and are
logged at debug level by the caller at most, never returned to gRPC clients. PreconditionError is
the exception: replicant writes its message for the caller, naming only the objects concerned.
"""

from __future__ import annotations

import asyncio
import json


class KubeError(Exception):
    """Base of every error raised by kube."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ApiUnavailableError(KubeError):
    """The API server could not be reached or did not answer in time; worth retrying."""


class NotSyncedError(ApiUnavailableError):
    """A cache the request depends on has not completed its first list yet."""


class ResourceExpiredError(KubeError):
    """410 Gone: the resourceVersion is older than the server keeps; a fresh list is needed."""


class NotFoundError(KubeError):
    """404 Not Found."""


class ConflictError(KubeError):
    """409 ConflictError: the object exists already or changed since it was read."""


class StaleVersionError(ConflictError):
    """The object is no longer at the version a compare-and-set expected (or is another one)."""


class PreconditionError(KubeError):
    """The cluster is not in a state where this write makes sense; str() is safe for callers."""


class InvalidError(KubeError):
    """400/422: the request was refused by validation on the API server."""


class AccessDeniedError(KubeError):
    """401/403: replicant's own identity may not do this; an operator must fix RBAC."""


def from_status(status: int, reason: str = "") -> KubeError:
    """Map an HTTP status (or a watch ERROR event's Status.code) to the domain error."""
    if status == 410:
        return ResourceExpiredError("resource version expired", status=status, reason=reason)
    if status == 404:
        return NotFoundError("not found", status=status, reason=reason)
    if status == 409:
        return ConflictError("conflict", status=status, reason=reason)
    if status in (400, 422):
        return InvalidError("rejected by the API server", status=status, reason=reason)
    if status in (401, 403):
        return AccessDeniedError("API server denied access", status=status, reason=reason)
    return ApiUnavailableError(f"API server answered {status}", status=status, reason=reason)


def status_reason(body: str | bytes | None) -> str:
    """The `reason` of a metav1.Status body (e.g. "Expired", "AlreadyExists"); "" if absent."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    reason = parsed.get("reason", "") if isinstance(parsed, dict) else ""
    return reason if isinstance(reason, str) else ""


def map_exception(exc: BaseException) -> KubeError:
    """Translate a client-library exception into the domain hierarchy (callers `raise ... from`)."""
    if isinstance(exc, KubeError):
        return exc
    # Imported here: see the module docstring.
    import aiohttp
    from kubernetes.aio.client.exceptions import ApiException, OpenApiException

    if isinstance(exc, ApiException):
        return from_status(int(exc.status or 0), status_reason(exc.body))
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ApiUnavailableError("API server timed out")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ApiUnavailableError(f"API server unreachable ({type(exc).__name__})")
    if isinstance(exc, OpenApiException):
        return InvalidError("client refused the request")
    return KubeError(f"unexpected client error ({type(exc).__name__})")

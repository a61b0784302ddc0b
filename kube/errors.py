"""The one error hierarchy of the Kubernetes access layer (requirement: consistent error
handling): kubernetes/aiohttp errors stop here.

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
          │                    with, an HPA owns the count); raised by kube, not the server
          └── AdmissionDeniedError  an admission policy or webhook refused the write (a 4xx
                                    whose message says so); names the policy only

Messages are generic: API error bodies can carry object contents and never reach gRPC clients.
PreconditionError's message is replicant's own, for the caller, naming only the objects concerned.
"""

from __future__ import annotations

import json
import re
from typing import Final

import aiohttp
from kubernetes.aio.client.exceptions import ApiException

# How the API server words admission refusals (k8s.io/apiserver admission plugins):
#   [<Kind> "<name>" is invalid: ]ValidatingAdmissionPolicy 'P' with binding 'B' denied request: ...
#   admission webhook "NAME" denied the request: ...
_ADMISSION: Final = re.compile(
    r"(?:ValidatingAdmissionPolicy '(?P<policy>[^']{1,253})' with binding '[^']*' denied"
    r"|admission webhook \"(?P<webhook>[^\"]{1,253})\" denied the request)"
)


class KubeError(Exception):
    """Base of every error raised by kube."""


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


class AdmissionDeniedError(PreconditionError):
    """An admission policy or webhook refused the write: a person has to change the request or
    the policy. str() names the policy only (its message may quote the object)."""


class AccessDeniedError(KubeError):
    """401/403: replicant's own identity may not do this; an operator must fix RBAC."""


def from_status(status: int) -> KubeError:
    """Map an HTTP status (or a watch ERROR event's Status.code) to the domain error."""
    if status == 410:
        return ResourceExpiredError("resource version expired")
    if status == 404:
        return NotFoundError("not found")
    if status == 409:
        return ConflictError("conflict")
    if status in (400, 422):
        return InvalidError("rejected by the API server")
    if status in (401, 403):
        return AccessDeniedError("API server denied access")
    return ApiUnavailableError(f"API server answered {status}")


def from_response(status: int, body: str | bytes | None) -> KubeError:
    """The domain error of a non-2xx answer, from its status and metav1.Status body."""
    if 400 <= status < 500 and (admission := _ADMISSION.search(_status_field(body, "message"))):
        name = admission["policy"] or admission["webhook"]
        return AdmissionDeniedError(
            f"the write was refused by the admission policy {name!r} of the cluster"
        )
    return from_status(status)


def _status_field(body: str | bytes | None, name: str) -> str:
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    value = parsed.get(name, "") if isinstance(parsed, dict) else ""
    return value if isinstance(value, str) else ""


def map_exception(exc: BaseException) -> KubeError | None:
    """The domain error of a client-library exception (callers `raise ... from`); None for any
    other exception, which the caller re-raises as it is: a bug must not look like an outage."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiException):
        return from_response(int(exc.status or 0), exc.body)
    if isinstance(exc, TimeoutError):
        return ApiUnavailableError("API server timed out")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ApiUnavailableError(f"API server unreachable ({type(exc).__name__})")
    return None

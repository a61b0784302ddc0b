"""Client-library exceptions map to the one kube error hierarchy (the libraries imported lazily)."""

from __future__ import annotations

import json

import aiohttp
import pytest
from kubernetes.aio.client.exceptions import ApiException, ApiValueError

from kube.errors import (
    AccessDeniedError,
    AdmissionDeniedError,
    ApiUnavailableError,
    InvalidError,
    KubeError,
    NotFoundError,
    ResourceExpiredError,
    from_response,
    map_exception,
)


def api_exception(status: int, reason: str) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = f'{{"kind": "Status", "reason": "{reason}"}}'
    return exc


@pytest.mark.parametrize(
    ("exc", "mapped"),
    [
        (api_exception(410, "Expired"), ResourceExpiredError),
        (api_exception(404, "NotFound"), NotFoundError),
        (api_exception(503, "ServiceUnavailable"), ApiUnavailableError),
        (TimeoutError(), ApiUnavailableError),
        (aiohttp.ClientConnectionError(), ApiUnavailableError),
        (ConnectionRefusedError(), ApiUnavailableError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
)
def test_map_exception_gives_the_domain_error(exc: BaseException, mapped: type[KubeError]) -> None:
    assert type(map_exception(exc)) is mapped


def test_map_exception_passes_a_kube_error_through() -> None:
    error = NotFoundError("not found")
    assert map_exception(error) is error


@pytest.mark.parametrize(
    "exc", [RuntimeError("bug"), TypeError("bug"), KeyError("x"), ApiValueError("bad parameter")]
)
def test_map_exception_leaves_programming_errors_alone(exc: BaseException) -> None:
    assert map_exception(exc) is None  # the caller re-raises it with its own traceback


def status(code: int, reason: str, message: str) -> str:
    return json.dumps({"kind": "Status", "code": code, "reason": reason, "message": message})


VAP = "ValidatingAdmissionPolicy 'cap' with binding 'cap-b' denied request: spec.replicas {x}"
WEBHOOK = 'admission webhook "guard.example.com" denied the request: replicas {x}'


@pytest.mark.parametrize(
    ("code", "reason", "message", "mapped", "named"),
    [
        (422, "Invalid", VAP, AdmissionDeniedError, "'cap'"),
        (422, "Invalid", f'ReplicaTarget "web" is invalid: : {VAP}', AdmissionDeniedError, "'cap'"),
        (403, "Forbidden", VAP, AdmissionDeniedError, "'cap'"),
        (403, "Forbidden", WEBHOOK, AdmissionDeniedError, "'guard.example.com'"),
        (400, "BadRequest", WEBHOOK, AdmissionDeniedError, "'guard.example.com'"),
        (403, "Forbidden", 'user "x" cannot patch resource "deployments"', AccessDeniedError, ""),
        (422, "Invalid", "spec.replicas: Invalid value", InvalidError, ""),
        (503, "ServiceUnavailable", VAP, ApiUnavailableError, ""),  # not a refusal
    ],
)
def test_admission_refusals_name_the_policy_and_nothing_else(
    code: int, reason: str, message: str, mapped: type[KubeError], named: str
) -> None:
    error = from_response(code, status(code, reason, message))
    assert type(error) is mapped
    assert named in str(error)
    assert "{x}" not in str(error)  # the policy's message (which may quote the object) stays out

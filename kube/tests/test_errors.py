"""Client-library exceptions map to the one kube error hierarchy (the libraries imported lazily)."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes.aio.client.exceptions import ApiException, ApiValueError

from kube.errors import (
    ApiUnavailableError,
    InvalidError,
    KubeError,
    NotFoundError,
    ResourceExpiredError,
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
        (ApiValueError("bad parameter"), InvalidError),
        (RuntimeError("bug"), KubeError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
)
def test_map_exception_gives_the_domain_error(exc: BaseException, mapped: type[KubeError]) -> None:
    assert type(map_exception(exc)) is mapped


def test_map_exception_keeps_the_status_reason() -> None:
    assert map_exception(api_exception(410, "Expired")).reason == "Expired"


def test_map_exception_passes_a_kube_error_through() -> None:
    error = NotFoundError("not found", status=404)
    assert map_exception(error) is error

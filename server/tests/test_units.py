"""Small pure pieces: validation, error mapping, config, JSON logs, backoff, fields."""

from __future__ import annotations

import datetime
import json
import logging

import grpc
import pytest

from server import config, errors, validation
from server.kube import errors as kube
from server.kube import fields
from server.kube.backoff import Backoff
from server.kube.views import deployment_view
from server.logs import JsonFormatter
from server.status import to_status


@pytest.mark.parametrize(("size", "expected"), [(0, 100), (1, 1), (500, 500)])
def test_page_size_defaults_and_bounds(size: int, expected: int) -> None:
    assert validation.page_size(size) == expected


@pytest.mark.parametrize("version", ["", "12345", "abc-DEF_1.2"])
def test_expected_version_accepts_opaque_tokens(version: str) -> None:
    assert validation.expected_version(version) == version


@pytest.mark.parametrize("version", ["has space", "x" * 129, "new\nline"])
def test_expected_version_rejects_junk(version: str) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        validation.expected_version(version)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.InvalidArgumentError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.PermissionDeniedError("x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.DeploymentNotFoundError("x"), grpc.StatusCode.NOT_FOUND),
        (errors.NotReadyError("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.NotImplementedYetError("x"), grpc.StatusCode.UNIMPLEMENTED),
        (errors.UnauthenticatedError("x"), grpc.StatusCode.UNAUTHENTICATED),
        (kube.ApiUnavailableError("x"), grpc.StatusCode.UNAVAILABLE),
        (kube.ConflictError("x"), grpc.StatusCode.ABORTED),
        (kube.InvalidError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (kube.NotFoundError("x"), grpc.StatusCode.NOT_FOUND),
        (kube.AccessDeniedError("secret body"), grpc.StatusCode.INTERNAL),
        (RuntimeError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_errors_map_to_grpc_codes_in_one_place(exc: Exception, code: grpc.StatusCode) -> None:
    mapped, message = to_status(exc)
    assert mapped == code
    assert "secret body" not in message


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (410, kube.ResourceExpiredError),
        (404, kube.NotFoundError),
        (409, kube.ConflictError),
        (422, kube.InvalidError),
        (403, kube.AccessDeniedError),
        (500, kube.ApiUnavailableError),
        (429, kube.ApiUnavailableError),
    ],
)
def test_http_statuses_map_to_kube_errors(status: int, kind: type[kube.KubeError]) -> None:
    assert isinstance(kube.from_status(status), kind)


def test_connection_errors_map_to_unavailable() -> None:
    assert isinstance(kube.map_exception(ConnectionRefusedError()), kube.ApiUnavailableError)
    assert isinstance(kube.map_exception(TimeoutError()), kube.ApiUnavailableError)


def test_flags_override_env_which_overrides_defaults() -> None:
    env = {"REPLICANT_GRPC_PORT": "9000", "REPLICANT_READERS": "a, b", "KUBECONFIG": "/k"}
    cfg = config.parse(["--grpc-port", "9443", "--namespaces", "x,y"], env)
    assert cfg.grpc_port == 9443
    assert cfg.readers == frozenset({"a", "b"})
    assert cfg.namespaces == ("x", "y")
    assert cfg.kubeconfig == "/k"
    assert cfg.http_port == 8080
    assert cfg.shutdown_grace_seconds == 20.0


def test_bad_port_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        config.parse(["--grpc-port", "x"], {})


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord("r", logging.INFO, "f", 1, "rpc", None, None)
    record.identity = "spiffe://x"
    record.code = "OK"
    line = json.loads(JsonFormatter().format(record))
    assert (line["msg"], line["identity"], line["code"], line["level"]) == (
        "rpc",
        "spiffe://x",
        "OK",
        "info",
    )


def test_backoff_grows_exponentially_to_a_cap_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0, uniform=lambda _low, high: high)
    assert [backoff.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_deployment_view_reads_counts_and_defaults_missing_ones() -> None:
    view = deployment_view(
        {"metadata": {"namespace": "n", "name": "d", "generation": 3}, "spec": {}, "status": {}}
    )
    assert (view.spec_replicas, view.ready_replicas, view.generation) == (1, 0, 3)


@pytest.mark.parametrize(
    ("raw", "expected"), [(3, 3), (0, 0), (None, None), (True, None), ("3", None)]
)
def test_optional_int_accepts_only_json_integers(raw: object, expected: int | None) -> None:
    assert fields.optional_int(raw) == expected
    assert fields.int_or_zero(raw) == (expected or 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01T10:20:30Z", datetime.datetime(2024, 5, 1, 10, 20, 30, tzinfo=datetime.UTC)),
        ("2024-05-01T10:20:30", datetime.datetime(2024, 5, 1, 10, 20, 30, tzinfo=datetime.UTC)),
        ("yesterday", None),
        ("", None),
        (17, None),
    ],
)
def test_parse_time_reads_rfc3339_as_utc_and_anything_else_as_none(
    raw: object, expected: datetime.datetime | None
) -> None:
    assert fields.parse_time(raw) == expected

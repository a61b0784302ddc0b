"""Small pure pieces: validation, error mapping, config, JSON logs, backoff, fields."""

from __future__ import annotations

import datetime
import json
import logging

import grpc
import pytest

from kube import desired, fields, replicatargets
from kube import errors as kube
from kube.backoff import Backoff
from kube.views import deployment_view
from replicant.v1 import replicant_pb2 as pb
from server import config, errors, validation
from server.logs import JsonFormatter
from server.status import to_status


@pytest.mark.parametrize(("size", "expected"), [(0, 100), (1, 1), (500, 500)])
def test_page_size_defaults_and_bounds(size: int, expected: int) -> None:
    assert validation.page_size(size) == expected


# Wire bytes, as an old client built without `optional` would send them: field 2 (replicas) is
# left out when 0, so only its presence tells "scale to zero" from "forgot the count".
@pytest.mark.parametrize(
    ("wire", "expected"), [(b"\x10\x00", 0), (b"\x10\x05", 5), (b"\x10\xe8\x07", 1000)]
)
def test_replicas_reads_an_explicit_count_from_the_wire(wire: bytes, expected: int) -> None:
    assert validation.replicas(pb.SetReplicasRequest.FromString(wire)) == expected


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"", "replicas is required"),
        (b"\x0a\x00", "replicas is required"),  # a ref and nothing else
        (b"\x10\xff\xff\xff\xff\x0f", "replicas must be 0..1000"),  # -1
        (b"\x10\xe9\x07", "replicas must be 0..1000"),
    ],
)
def test_replicas_rejects_a_missing_or_out_of_range_count(wire: bytes, message: str) -> None:
    with pytest.raises(errors.InvalidArgumentError, match=message):
        validation.replicas(pb.SetReplicasRequest.FromString(wire))


UID = "6f1c1a52-0b5e-4c59-9a53-2d2f1d3c8e01"


@pytest.mark.parametrize("version", ["", f"{UID}:1", f"{UID}:{2**63 - 1}"])
def test_expected_version_accepts_what_the_api_returns(version: str) -> None:
    assert validation.expected_version(version) == version


@pytest.mark.parametrize(
    "version",
    [
        "garbage",
        "-1",
        "2",  # a bare generation: the spelling before versions named the object
        " 2",
        "99999999999999999999999",
        f"{UID}:0",
        f"{UID}:-1",
        f"{UID}:01",
        f"{UID}: 2",
        f"{UID}:{2**63}",
        f"{UID}:99999999999999999999999",
        f"{UID.upper()}:2",
        f"{UID}:2\n",
        f"{UID}:\u0662",  # an Arabic-Indic digit: isdecimal() says yes, Kubernetes says no
        "x" * 129,
    ],
)
def test_expected_version_rejects_anything_else_whatever_its_spelling(version: str) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        validation.expected_version(version)


def test_version_names_the_object_and_its_spec() -> None:
    target = replicatargets.parse_replica_target(
        {"metadata": {"namespace": "n", "name": "d", "uid": UID, "generation": 7}, "spec": {}}
    )
    version = desired.version_of(target)
    assert (version, desired.is_version(version)) == (f"{UID}:7", True)


def reconciled_target(generation: int, observed: int, status: str) -> dict[str, object]:
    condition = {
        "type": "Reconciled",
        "status": status,
        "reason": "Converged",
        "lastTransitionTime": "2030-01-01T00:00:00Z",
        "observedGeneration": observed,
    }
    return {
        "metadata": {"namespace": "n", "name": "d", "uid": UID, "generation": generation},
        "spec": {"replicas": 3},
        "status": {"conditions": [condition]},
    }


@pytest.mark.parametrize(
    ("generation", "observed", "status", "converged"),
    [(2, 2, "True", True), (3, 2, "True", False), (2, 2, "False", False)],
)
def test_converged_only_when_the_condition_is_about_the_current_spec(
    generation: int, observed: int, status: str, converged: bool
) -> None:
    target = replicatargets.parse_replica_target(reconciled_target(generation, observed, status))
    reconcile = desired.desired_state_view(target).reconcile
    assert reconcile is not None
    assert (reconcile.converged, reconcile.observed_generation) == (converged, observed)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.InvalidArgumentError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.PermissionDeniedError("x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.DeploymentNotFoundError("x"), grpc.StatusCode.NOT_FOUND),
        (errors.NotReadyError("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.UnauthenticatedError("x"), grpc.StatusCode.UNAUTHENTICATED),
        (kube.ApiUnavailableError("x"), grpc.StatusCode.UNAVAILABLE),
        (kube.ConflictError("x"), grpc.StatusCode.ABORTED),
        (kube.StaleVersionError("secret body"), grpc.StatusCode.ABORTED),
        (kube.PreconditionError("no target"), grpc.StatusCode.FAILED_PRECONDITION),
        (kube.AdmissionDeniedError("policy 'cap'"), grpc.StatusCode.FAILED_PRECONDITION),
        (kube.NotSyncedError("x"), grpc.StatusCode.UNAVAILABLE),
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


def test_flags_override_defaults() -> None:
    cfg = config.parse(["--grpc-port", "9443", "--namespaces", "x,y", "--kubeconfig", "/k"])
    assert cfg.grpc_port == 9443
    assert cfg.namespaces == ("x", "y")
    assert config.parse(["--namespaces", "x,y,x"]).namespaces == ("x", "y")  # each once
    assert cfg.kubeconfig == "/k"
    assert cfg.http_port == 8080


def test_readers_and_writers_flags_are_repeatable() -> None:
    argv = ["--readers", "a", "--readers", "b,c=x", "--writers", "w", "--namespaces", "x"]
    cfg = config.parse(argv)
    assert cfg.readers == frozenset({"a", "b", "c=x"})  # every occurrence counts
    assert cfg.writers == frozenset({"w"})


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--namespaces", "Bad_NS"], "--namespaces: 'Bad_NS' is not a DNS-1123 label"),
        (["--namespaces", "a,b/c"], "--namespaces: 'b/c' is not a DNS-1123 label"),
        (["--namespaces", "n" * 64], "is not a DNS-1123 label"),
        (["--leader-election-namespace", "kube_system"], "--leader-election-namespace: "),
        (
            ["--readers", "spiffe://x/a,bad\tid"],
            "--readers: 'bad\\tid' is not a valid grant: the identity",
        ),
        (["--writers", "a b"], "--writers: 'a b' is not a valid grant: the identity"),
        (["--grpc-port", "x"], "--grpc-port: 'x' is not a port (0..65535)"),
        (["--http-port", "65536"], "--http-port: '65536' is not a port"),
        (["--http-port", "-1"], "--http-port: '-1' is not a port"),
    ],
)
def test_invalid_settings_are_refused_naming_flag_and_value(argv: list[str], problem: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.parse(argv)
    assert problem in str(refused.value)


def test_every_invalid_setting_is_named_at_once() -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.parse(["--namespaces", "Bad_NS", "--grpc-port", "x"])
    assert str(refused.value) == (
        "--namespaces: 'Bad_NS' is not a DNS-1123 label; --grpc-port: 'x' is not a port (0..65535)"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--namespaces", "a, kube-system ,b"],
        ["--grpc-port", "0", "--http-port", "0"],
        ["--readers", "spiffe://replicant.dev/client/ci,ci.example.com"],
    ],
)
def test_valid_settings_are_accepted(argv: list[str]) -> None:
    config.parse(argv)


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

"""ghz's report is read right, and the descriptor set it loads skims replies but keeps requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf import descriptor_pb2

from tools import bench_load

if TYPE_CHECKING:
    from pathlib import Path


def test_parse_report_keeps_ok_latencies_in_seconds_and_counts_failures_by_status() -> None:
    report = {
        "total": 4_000_000_000,
        "details": [
            {"latency": 2_000_000, "status": "OK"},
            {"latency": 4_000_000, "status": "OK"},
            {"latency": 9_000_000, "status": "Unavailable"},
            {"latency": 1_000_000, "status": "Unavailable"},
            {"latency": 1_000_000, "status": "PermissionDenied"},
        ],
    }
    result = bench_load.parse_report(report)
    assert result.ok == 2
    assert result.latencies == [0.002, 0.004]
    assert result.failed == {"Unavailable": 2, "PermissionDenied": 1}
    assert result.seconds == 4.0


def test_parse_report_without_details_has_no_calls() -> None:
    result = bench_load.parse_report({"total": 1_000_000_000, "details": None})
    assert (result.ok, result.failed, result.latencies) == (0, {}, [])


def test_protoset_declares_no_reply_fields_but_full_requests(tmp_path: Path) -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(
        bench_load.write_protoset(tmp_path / "set").read_bytes()
    )
    assert [f.name for f in files.file] == [
        "google/protobuf/timestamp.proto",
        "replicant/v1/replicant.proto",
    ]
    messages = {m.name: m for m in files.file[-1].message_type}
    assert not messages["GetReplicasResponse"].field
    assert not messages["ListDeploymentsResponse"].field
    assert [f.name for f in messages["ListDeploymentsRequest"].field] == [
        "namespace",
        "page_size",
        "page_token",
    ]
    assert files.file[-1].service[0].name == "ReplicaService"


def test_ghz_argv_shares_connections_and_bounds_the_run(tmp_path: Path) -> None:
    argv = bench_load.ghz_argv(
        tmp_path / "ghz", tmp_path / "set", tmp_path / "pki", 8443,
        method="GetReplicas", request={"ref": {"name": "x"}}, concurrency=50, seconds=4.0,
    )  # fmt: skip
    assert argv[argv.index("--call") + 1] == "replicant.v1.ReplicaService.GetReplicas"
    assert argv[argv.index("--connections") + 1] == "10"
    assert argv[argv.index("-z") + 1] == "4s"
    assert argv[argv.index("-d") + 1] == '{"ref": {"name": "x"}}'
    assert argv[-1] == "127.0.0.1:8443"
    assert "--rps" not in argv


def test_ghz_argv_offers_a_fixed_rate_when_asked(tmp_path: Path) -> None:
    argv = bench_load.ghz_argv(
        tmp_path / "ghz", tmp_path / "set", tmp_path / "pki", 8443,
        method="GetReplicas", request={}, concurrency=50, seconds=4.0, rps=2000,
    )  # fmt: skip
    assert argv[argv.index("--rps") + 1] == "2000"
    assert argv[-1] == "127.0.0.1:8443"

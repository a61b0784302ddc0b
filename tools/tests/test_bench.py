"""The pure parts of `make bench`: what ghz is told about the API, how its report is read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from google.protobuf import descriptor_pb2

from tools import bench

if TYPE_CHECKING:
    from pathlib import Path


def test_protoset_replies_declare_no_fields_and_requests_keep_theirs(tmp_path: Path) -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(
        bench.write_protoset(tmp_path / "api.protoset").read_bytes()
    )

    messages = {m.name: m for m in files.file[-1].message_type}
    assert not messages["GetReplicasResponse"].field
    assert not messages["ListDeploymentsResponse"].field
    assert messages["ListDeploymentsRequest"].field
    assert files.file[0].name == "google/protobuf/timestamp.proto"


def test_ghz_report_counts_only_ok_calls() -> None:
    report = {"statusCodeDistribution": {"OK": 7900, "Unavailable": 50}}

    assert bench.ghz_ok_calls(report) == 7900


@pytest.mark.parametrize("counts", [{}, {"Unavailable": 3}, {"OK": 0}])
def test_ghz_report_without_an_ok_call_fails(counts: dict[str, int]) -> None:
    with pytest.raises(RuntimeError, match="no call succeeded"):
        bench.ghz_ok_calls({"statusCodeDistribution": counts, "errorDistribution": {"x": 1}})


def test_ratio_is_the_median_of_the_pairs() -> None:
    assert bench.ratio([2.0, 3.0, 100.0], [1.0, 2.0, 1.0]) == "2.00x"

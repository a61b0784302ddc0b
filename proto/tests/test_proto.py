"""The proto file is the API contract: it matches the design doc and compiles to stubs."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO = REPO / "proto" / "replicant" / "v1" / "replicant.proto"
DESIGN = REPO / "docs" / "design.md"


def _proto_block_in_design_doc() -> str:
    blocks = re.findall(r"```proto\n(.*?)```", DESIGN.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, "docs/design.md must hold exactly one ```proto block"
    return str(blocks[0])


def test_design_doc_proto_block_equals_proto_file() -> None:
    assert _proto_block_in_design_doc().strip() == PROTO.read_text().strip()


def test_stubs_generate_and_import(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO / 'proto'}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(PROTO),
        ],
        check=True,
    )
    sys.path.insert(0, str(tmp_path))
    saved = {k: v for k, v in sys.modules.items() if k == "replicant" or k.startswith("replicant.")}
    for name in saved:
        del sys.modules[name]
    try:
        pb2 = importlib.import_module("replicant.v1.replicant_pb2")
        pb2_grpc = importlib.import_module("replicant.v1.replicant_pb2_grpc")
        service = pb2.DESCRIPTOR.services_by_name["ReplicaService"]
        assert [m.name for m in service.methods] == [
            "GetReplicas",
            "SetReplicas",
            "ListDeployments",
        ]
        assert hasattr(pb2_grpc, "ReplicaServiceStub")
        deployment = pb2.Deployment()
        assert not deployment.HasField("desired"), "an unset desired state must be distinguishable"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [k for k in sys.modules if k == "replicant" or k.startswith("replicant.")]:
            del sys.modules[name]
        sys.modules.update(saved)

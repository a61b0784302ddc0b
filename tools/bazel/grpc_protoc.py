"""Runs grpcio-tools' bundled protoc for the Bazel build of the gRPC stubs.

`python -m grpc_tools.protoc` adds the well-known types (google/protobuf/*.proto) to the
include path only when run as __main__; a py_binary needs the same, so this wrapper
adds grpc_tools/_proto explicitly. Using grpcio-tools from the locked @pip hub keeps
the generated code on the same protobuf/grpcio versions as the runtime, with no C++
protobuf or gRPC build.
"""

from __future__ import annotations

import sys
from importlib import resources

from grpc_tools import protoc  # type: ignore[import-untyped]


def main(argv: list[str]) -> int:
    well_known = resources.files("grpc_tools") / "_proto"
    return int(protoc.main(["grpc_protoc", *argv, f"--proto_path={well_known}"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

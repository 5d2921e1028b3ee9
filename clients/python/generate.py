"""Generates the gRPC stubs from ../../proto into sqlgate_client/_generated (not committed)."""
import os
import sys

from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "proto")
OUT = os.path.join(HERE, "sqlgate_client", "_generated")


def main():
    os.makedirs(OUT, exist_ok=True)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={OUT}",
        f"--grpc_python_out={OUT}",
        os.path.join(PROTO_ROOT, "sqlgate", "v1", "sqlgate.proto"),
    ])
    if code != 0:
        sys.exit(code)


if __name__ == "__main__":
    main()

"""Compiles the sqlgate protos into sqlgate_client/_generated.

Shared by generate.py (development: stubs in the source tree) and setup.py
(the build step of `pip install`, which writes them into the built package).
The protos are read from ./proto when present (an unpacked sdist carries a
copy there) or else from ../../proto (the repository checkout)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MAIN_PROTO = os.path.join("sqlgate", "v1", "sqlgate.proto")


def proto_root():
    """The directory holding sqlgate/v1/sqlgate.proto (and google/rpc/status.proto)."""
    for candidate in (os.path.join(HERE, "proto"), os.path.join(HERE, "..", "..", "proto")):
        if os.path.isfile(os.path.join(candidate, MAIN_PROTO)):
            return os.path.normpath(candidate)
    raise FileNotFoundError(
        f"cannot find {MAIN_PROTO} in {HERE}/proto or {HERE}/../../proto: "
        "build from the sqlgate repository or from its sdist"
    )


def proto_files(root=None):
    """Every .proto under the root, as paths relative to it (for the sdist)."""
    root = root or proto_root()
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            if name.endswith(".proto"):
                found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def generate(out, root=None):
    """Writes sqlgate/v1/sqlgate_pb2.py and sqlgate_pb2_grpc.py under `out`.

    Only sqlgate.proto is compiled: google.rpc.status_pb2, which it imports,
    comes from the googleapis-common-protos package at run time (proto/google
    is only on the include path)."""
    from grpc_tools import protoc  # a build requirement, not a run-time one

    root = root or proto_root()
    os.makedirs(out, exist_ok=True)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{root}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        os.path.join(root, MAIN_PROTO),
    ])
    if code != 0:
        raise RuntimeError(f"grpc_tools.protoc failed with exit code {code}")

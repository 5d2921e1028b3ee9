"""Build step: compile the gRPC stubs from the protos into the built package.

All metadata is in pyproject.toml; this file only adds
- build_py: after copying the sources, run grpc_tools.protoc (grpcio-tools is
  in [build-system].requires) into <build_lib>/sqlgate_client/_generated, so
  the wheel carries the stubs and nothing is left to the user;
- sdist: put a copy of the protos in the archive's proto/ directory, so a
  build from the sdist (away from the repository) still finds them.
"""
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _build_stubs import generate, proto_files, proto_root  # noqa: E402


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "sqlgate_client", "_generated")
        shutil.rmtree(out, ignore_errors=True)  # never ship stale stubs
        generate(out)


class SdistWithProtos(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        root = proto_root()
        for relative in proto_files(root):
            target = os.path.join(base_dir, "proto", relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(root, relative), target)


setup(cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithProtos})

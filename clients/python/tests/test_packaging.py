"""`pip install` of the package (from the source directory, then from its
sdist, away from the repository) into a fresh venv gives a working driver:
stubs generated at build time, nothing left to do. Slow (a real pip install,
from PyPI or pip's cache); SQLGATE_SKIP_PIP_TEST=1 skips it."""
import os
import subprocess
import sys
import tempfile

import pytest

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHECK = """
import sys
import sqlgate_client
from sqlgate_client import dbapi
assert sqlgate_client.__file__.startswith(sys.prefix), sqlgate_client.__file__
with dbapi.connect(sys.argv[1], autocommit=True) as conn:
    cur = conn.cursor(dbapi.SSCursor)
    cur.execute("SELECT seq * 2 FROM seq_1_to_3")
    print(sum(r[0] for r in cur.fetchall()))
# The SQLAlchemy dialect is registered (SQLAlchemy itself is an extra, not installed here).
from importlib.metadata import entry_points
names = {e.name: e.value for e in entry_points(group="sqlalchemy.dialects")}
assert names["sqlgate"] == names["mysql.sqlgate"] == "sqlgate_client.sqlalchemy_dialect:SqlgateDialect", names
"""


def _run(args, cwd):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.skipif(os.environ.get("SQLGATE_SKIP_PIP_TEST") == "1", reason="SQLGATE_SKIP_PIP_TEST=1")
def test_pip_install_into_a_fresh_venv(gateway_address):
    with tempfile.TemporaryDirectory(prefix="sqlgate-pip-") as tmp:
        venv = os.path.join(tmp, "venv")
        _run([sys.executable, "-m", "venv", venv], tmp)
        python = os.path.join(venv, "bin", "python")
        pip = [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
        with open(os.path.join(tmp, "check.py"), "w") as f:
            f.write(CHECK)
        check = [python, os.path.join(tmp, "check.py"), gateway_address]

        # No stubs exist in the venv before the install.
        assert subprocess.run([python, "-c", "import sqlgate_client"], cwd=tmp).returncode != 0
        _run(pip + [PACKAGE], tmp)
        assert _run(check, tmp).strip() == "12"

        # The sdist carries the protos: it builds in a directory without ../../proto.
        dist = os.path.join(tmp, "dist")
        _run([sys.executable, "-c",
              f"from setuptools import build_meta; build_meta.build_sdist({dist!r})"], PACKAGE)
        (sdist,) = os.listdir(dist)
        _run(pip + ["--force-reinstall", "--no-deps", os.path.join(dist, sdist)], tmp)
        assert _run(check, tmp).strip() == "12"

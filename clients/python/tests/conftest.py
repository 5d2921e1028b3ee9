"""Starts a real gateway (with its own private MariaDB) for the session."""
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from sqlgate_client import Client  # noqa: E402

import gateway_process  # noqa: E402


@pytest.fixture(scope="session")
def gateway_address():
    """Starts the gateway (and its private MariaDB) once; yields "host:port"."""
    data_dir = tempfile.mkdtemp(prefix="sqlgate-python-")
    process, address = gateway_process.start(data_dir)
    gateway_process.wait_ready(address, within=30)
    yield address
    assert gateway_process.stop(process, within=30) == 0
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def client(gateway_address):
    db = Client(gateway_address)
    yield db
    db.close()

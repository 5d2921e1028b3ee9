"""Starts a real gateway (with its own private MariaDB) for the session."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from sqlgate_client import Client  # noqa: E402

BINARY = os.environ.get("SQLGATE_BIN") or os.path.join(HERE, "..", "..", "..", "target", "debug", "sqlgate")


@pytest.fixture(scope="session")
def gateway_address():
    """Starts the gateway (and its private MariaDB) once; yields "host:port"."""
    data_dir = tempfile.mkdtemp(prefix="sqlgate-python-")
    process = subprocess.Popen(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(data_dir, "mysql"),
         "--log-format", "json"],
        stderr=subprocess.PIPE, text=True,
    )
    address = None
    for line in process.stderr:
        if "listening for gRPC" in line:
            address = json.loads(line)["address"]
            break
    assert address, "the gateway did not start"
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    db = Client(address)
    deadline = time.monotonic() + 30
    while True:  # ready once the private database answers
        try:
            db.execute("SELECT 1")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    db.close()
    yield address
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def client(gateway_address):
    db = Client(gateway_address)
    yield db
    db.close()

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
def gateway():
    """Starts the gateway (and its private MariaDB) once; yields the process."""
    data_dir = tempfile.mkdtemp(prefix="sqlgate-python-")
    process, address = gateway_process.start(data_dir)
    process.address = address
    gateway_process.wait_ready(address, within=30)
    yield process
    assert gateway_process.stop(process, within=30) == 0
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway_address(gateway):
    """The gateway's "host:port"."""
    return gateway.address


@pytest.fixture
def pymysql_connect(gateway):
    """Connects PyMySQL to the same MariaDB the gateway serves (as root over
    its unix socket, database `sqlgate`): the reference the driver is compared
    with. Closes what it opened."""
    import pymysql
    assert gateway.database_socket, "the gateway's log named no database socket"
    opened = []

    def connect(**kwargs):
        conn = pymysql.connect(unix_socket=gateway.database_socket, user="root", database="sqlgate",
                               charset="utf8mb4", **kwargs)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def pymysql_url(gateway):
    """A SQLAlchemy URL of PyMySQL on the same MariaDB as the gateway."""
    assert gateway.database_socket, "the gateway's log named no database socket"
    return f"mysql+pymysql://root@localhost/sqlgate?unix_socket={gateway.database_socket}&charset=utf8mb4"


@pytest.fixture(scope="session")
def client(gateway_address):
    db = Client(gateway_address)
    yield db
    db.close()

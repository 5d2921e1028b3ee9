"""A small Python client for sqlgate, the gRPC gateway to MySQL and MariaDB.

    from sqlgate_client import Client
    db = Client("localhost:50051")
    db.transaction(lambda tx: tx.execute("UPDATE t SET n = n + 1 WHERE id = ?", [1]))

The DB-API 2.0 (PEP 249) driver is sqlgate_client.dbapi.
"""
import os
import sys

# The generated modules import each other as `sqlgate.v1...`: make their
# directory importable.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_generated"))

from .client import Client, Result, Transaction, TransactionStream  # noqa: E402
from .errors import SqlgateError, TransactionAborted, TransactionEnded  # noqa: E402
from .retry import RetryPolicy  # noqa: E402
from .values import Json  # noqa: E402

__all__ = ["Client", "Result", "Transaction", "TransactionStream", "SqlgateError",
           "TransactionAborted", "TransactionEnded", "RetryPolicy", "Json"]

"""The client: Execute, ExecuteStream, Begin/Commit/Rollback, ExecuteBatch, and
`transaction(fn)`, which reruns fn on ABORTED as sqlgate's README asks."""
import random
import time
from dataclasses import dataclass, field

import grpc
from sqlgate.v1 import sqlgate_pb2 as pb
from sqlgate.v1 import sqlgate_pb2_grpc as pb_grpc

from .errors import TransactionAborted, from_rpc_error
from .values import from_value, to_value

_ISOLATION = {
    None: pb.ISOLATION_LEVEL_DEFAULT,
    "READ UNCOMMITTED": pb.ISOLATION_LEVEL_READ_UNCOMMITTED,
    "READ COMMITTED": pb.ISOLATION_LEVEL_READ_COMMITTED,
    "REPEATABLE READ": pb.ISOLATION_LEVEL_REPEATABLE_READ,
    "SERIALIZABLE": pb.ISOLATION_LEVEL_SERIALIZABLE,
}


@dataclass
class Result:
    """A statement's result: column names, rows as tuples of Python values, counts."""

    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    rows_affected: int = 0
    last_insert_id: int = 0
    truncated: bool = False


def _result(message):
    return Result(
        columns=[c.name for c in message.columns],
        rows=[tuple(from_value(v) for v in row.values) for row in message.rows],
        rows_affected=message.rows_affected,
        last_insert_id=message.last_insert_id,
        truncated=getattr(message, "truncated", False),
    )


def _options(isolation, read_only):
    return pb.TransactionOptions(isolation=_ISOLATION[isolation], read_only=read_only)


class Client:
    def __init__(self, target="localhost:50051", *, channel=None, token=None):
        self._channel = channel or grpc.insecure_channel(target)
        self._stub = pb_grpc.DatabaseStub(self._channel)
        self._metadata = [("authorization", f"Bearer {token}")] if token else None

    def _call(self, method, request):
        try:
            return getattr(self._stub, method)(request, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def execute(self, sql, params=(), *, transaction_id="", max_rows=0):
        request = pb.ExecuteRequest(sql=sql, params=[to_value(p) for p in params],
                                    transaction_id=transaction_id or "", max_rows=max_rows)
        return _result(self._call("Execute", request))

    def stream(self, sql, params=(), *, transaction_id=""):
        """Yields rows (tuples) of a result of any size."""
        request = pb.ExecuteRequest(sql=sql, params=[to_value(p) for p in params],
                                    transaction_id=transaction_id or "")
        try:
            for message in self._stub.ExecuteStream(request, metadata=self._metadata):
                if message.WhichOneof("part") == "rows":
                    for row in message.rows.rows:
                        yield tuple(from_value(v) for v in row.values)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def begin(self, isolation=None, read_only=False):
        response = self._call("Begin", pb.BeginRequest(options=_options(isolation, read_only)))
        return response.transaction_id

    def commit(self, transaction_id):
        self._call("Commit", pb.CommitRequest(transaction_id=transaction_id))

    def rollback(self, transaction_id):
        return self._call("Rollback", pb.RollbackRequest(transaction_id=transaction_id)).rolled_back

    def batch(self, statements):
        """Runs [(sql, params), ...] in one transaction that commits at the end."""
        request = pb.ExecuteBatchRequest(statements=[
            pb.Statement(sql=sql, params=[to_value(p) for p in params]) for sql, params in statements
        ])
        return [_result(r) for r in self._call("ExecuteBatch", request).results]

    def transaction(self, fn, *, retries=10, isolation=None, read_only=False):
        """Runs fn(tx) in a transaction and commits; reruns all of it on ABORTED
        (deadlock, lock wait timeout, expired), up to `retries` times; rolls back
        and re-raises anything else."""
        for attempt in range(retries + 1):
            tx = Transaction(self, self.begin(isolation, read_only))
            try:
                value = fn(tx)
                self.commit(tx.id)
                return value
            except TransactionAborted:
                self._quiet_rollback(tx.id)
                if attempt == retries:
                    raise
                time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
            except BaseException:
                self._quiet_rollback(tx.id)
                raise

    def _quiet_rollback(self, transaction_id):
        try:
            self.rollback(transaction_id)
        except Exception:  # the transaction may already be gone
            pass

    def close(self):
        self._channel.close()


class Transaction:
    """An open transaction, as handed to transaction(fn)."""

    def __init__(self, client, transaction_id):
        self._client = client
        self.id = transaction_id

    def execute(self, sql, params=()):
        return self._client.execute(sql, params, transaction_id=self.id)

    def stream(self, sql, params=()):
        return self._client.stream(sql, params, transaction_id=self.id)

"""The client: Execute, ExecuteStream, Begin/Commit/Rollback, ExecuteBatch, and
`transaction(fn)`, which reruns fn on ABORTED as sqlgate's README asks."""
import queue
import time
from dataclasses import dataclass, field

import grpc
from sqlgate.v1 import sqlgate_pb2 as pb
from sqlgate.v1 import sqlgate_pb2_grpc as pb_grpc

from google.protobuf import duration_pb2

from .errors import SqlgateError, TransactionEnded, ends_transaction, from_rpc_error, from_status
from .retry import new_request_id, policy_for, unanswered_commit
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
    #: A committed write's replication position ("" unless the gateway has
    #: replicas): pass it as min_commit_token to read your write anywhere.
    commit_token: str = ""
    #: True when the call's request_id was recorded already: nothing ran
    #: now, and the counts are the recorded ones (no rows).
    replayed: bool = False


def _result(message, replayed=False):
    return Result(
        columns=[c.name for c in message.columns],
        rows=[tuple(from_value(v) for v in row.values) for row in message.rows],
        rows_affected=message.rows_affected,
        last_insert_id=message.last_insert_id,
        truncated=getattr(message, "truncated", False),
        commit_token=getattr(message, "commit_token", ""),
        replayed=getattr(message, "replayed", replayed),
    )


def _consistency(max_staleness=None, min_commit_token=None):
    """A ReadConsistency: a replica at most `max_staleness` seconds behind, or
    one that has applied `min_commit_token`; None (the primary) without either."""
    if min_commit_token is not None:
        return pb.ReadConsistency(min_commit_token=min_commit_token)
    if max_staleness is not None:
        staleness = duration_pb2.Duration()
        staleness.FromNanoseconds(int(max_staleness * 1e9))
        return pb.ReadConsistency(max_staleness=staleness)
    return None


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

    def execute(self, sql, params=(), *, transaction_id="", max_rows=0,
                max_staleness=None, min_commit_token=None, request_id=None):
        """Runs one statement. An autocommit read may go to a replica with
        max_staleness (seconds) or min_commit_token (see Result.commit_token).
        An autocommit write with a request_id is recorded with it: running it
        again with the same id answers the recorded outcome (Result.replayed)
        instead of writing twice."""
        request = pb.ExecuteRequest(sql=sql, params=[to_value(p) for p in params],
                                    transaction_id=transaction_id or "", max_rows=max_rows,
                                    read_consistency=_consistency(max_staleness, min_commit_token),
                                    request_id=request_id or "")
        return _result(self._call("Execute", request))

    def stream(self, sql, params=(), *, transaction_id="", max_staleness=None, min_commit_token=None):
        """Yields rows (tuples) of a result of any size."""
        request = pb.ExecuteRequest(sql=sql, params=[to_value(p) for p in params],
                                    transaction_id=transaction_id or "",
                                    read_consistency=_consistency(max_staleness, min_commit_token))
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

    def commit(self, transaction_id, *, request_id=None):
        """Commits; returns the commit token ("" unless the gateway has replicas).
        With a request_id, the commit is recorded under it (see commit_result)."""
        return self.commit_result(transaction_id, request_id=request_id).commit_token

    def commit_result(self, transaction_id, *, request_id=None):
        """Commits; returns a Result with the commit token and `replayed`
        (the request_id was recorded already: this transaction was rolled
        back and the recorded commit is the answer)."""
        request = pb.CommitRequest(transaction_id=transaction_id, request_id=request_id or "")
        response = self._call("Commit", request)
        return Result(commit_token=response.commit_token, replayed=response.replayed)

    def transaction_stream(self, isolation=None, read_only=False):
        """Opens a Transaction stream: one transaction as one gRPC stream, which
        stays on one gateway through any proxy. Use it as a context manager;
        leaving without commit() rolls the transaction back at once."""
        return TransactionStream(self, _options(isolation, read_only))

    def rollback(self, transaction_id):
        return self._call("Rollback", pb.RollbackRequest(transaction_id=transaction_id)).rolled_back

    def batch(self, statements, *, request_id=None):
        """Runs [(sql, params), ...] in one transaction that commits at the end.
        With a request_id, a rerun answers the recorded results (each with
        `replayed` set) instead of running the batch again."""
        request = pb.ExecuteBatchRequest(statements=[
            pb.Statement(sql=sql, params=[to_value(p) for p in params]) for sql, params in statements
        ], request_id=request_id or "")
        response = self._call("ExecuteBatch", request)
        return [_result(r, response.replayed) for r in response.results]

    def transaction(self, fn, *, policy=None, retries=None, isolation=None, read_only=False,
                    request_id=None):
        """Runs fn(tx) in a transaction and commits. When the transaction fails
        retryably (ABORTED: deadlock, expiry...; a lock wait timeout 1205; the
        gateway's TOO_MANY_TRANSACTIONS / POOL_EXHAUSTED refusals), it is
        rolled back and all of fn runs again after a jittered exponential
        back-off, up to `policy.attempts` runs (RetryPolicy; default 25 runs,
        0.01 s doubling to 1 s; `retries=n` means n reruns); then the last
        error is raised. Anything else rolls back and is re-raised. If fn
        catches an error that ended the transaction and returns, the helper
        does not commit: it counts as that error (TransactionEnded).

        Every run's commit carries one request id (`request_id`, or a fresh
        UUID per transaction() call), so a commit whose answer was lost
        (UNKNOWN, UNAVAILABLE, a deadline: the gateway or the database
        connection failed during COMMIT) is rerun too: if it did commit, the
        gateway rolls the rerun back and answers the recorded commit, so the
        work is applied once."""
        policy = policy_for(retries, policy)
        request_id = request_id or new_request_id()
        for run in range(1, policy.attempts + 1):
            tx = None
            committing = False
            try:
                tx = Transaction(self, self.begin(isolation, read_only))
                value = fn(tx)
                if tx.ended_by is not None:
                    raise TransactionEnded(tx.ended_by)
                committing = True
                self.commit(tx.id, request_id=request_id)
                return value
            except SqlgateError as error:
                if tx is not None:
                    self._quiet_rollback(tx.id)
                cause = error.cause if isinstance(error, TransactionEnded) else error
                retry = policy.retryable(cause) or (committing and unanswered_commit(cause))
                if run == policy.attempts or not retry:
                    raise
                time.sleep(policy.delay(run))
            except BaseException:
                if tx is not None:
                    self._quiet_rollback(tx.id)
                raise

    def _quiet_rollback(self, transaction_id):
        try:
            self.rollback(transaction_id)
        except Exception:  # the transaction may already be gone
            pass

    def close(self):
        self._channel.close()


class _OpenTransaction:
    """What Transaction and aio.AsyncTransaction share: the transaction's id,
    and once a call fails with an error that ends the transaction (see
    errors.ends_transaction), `ended_by`, that error, after which every
    call raises TransactionEnded."""

    def __init__(self, client, transaction_id):
        self._client = client
        self.id = transaction_id
        self.ended_by = None

    def _check(self):
        if self.ended_by is not None:
            raise TransactionEnded(self.ended_by)

    def _failed(self, error):
        if ends_transaction(error):
            self.ended_by = error


class Transaction(_OpenTransaction):
    """An open transaction, as handed to transaction(fn). Once a call fails
    with an error that ends the transaction (see errors.ends_transaction),
    `ended_by` is that error and every later call raises TransactionEnded."""

    def execute(self, sql, params=()):
        self._check()
        try:
            return self._client.execute(sql, params, transaction_id=self.id)
        except SqlgateError as error:
            self._failed(error)
            raise

    def stream(self, sql, params=()):
        self._check()
        try:
            yield from self._client.stream(sql, params, transaction_id=self.id)
        except SqlgateError as error:
            self._failed(error)
            raise


class TransactionStream:
    """One transaction as one bidirectional Transaction stream: execute() runs
    a statement (raising its in-band error, the transaction staying open),
    commit() commits and returns the commit token, rollback() rolls back;
    close() (or leaving the `with` block) without either rolls back at once."""

    def __init__(self, client, options):
        self._requests = queue.Queue()
        self._finished = False

        def requests():
            while True:
                request = self._requests.get()
                if request is None:
                    return
                yield request

        self._call = client._stub.Transaction(requests(), metadata=client._metadata)
        begun = self._send(pb.TransactionRequest(begin=options))
        self.id = begun.begun.transaction_id

    def _send(self, request):
        self._requests.put(request)
        try:
            return next(self._call)
        except grpc.RpcError as error:
            self._finished = True
            raise from_rpc_error(error) from None

    def execute(self, sql, params=(), *, max_rows=0):
        response = self._send(pb.TransactionRequest(statement=pb.TransactionStatement(
            sql=sql, params=[to_value(p) for p in params], max_rows=max_rows)))
        outcome = response.statement
        if outcome.WhichOneof("outcome") == "error":
            raise from_status(outcome.error)
        return _result(outcome.result)

    def commit(self, *, request_id=None):
        """Commits; returns the commit token. With a request_id, see
        Client.commit_result (`self.replayed` tells a replay)."""
        response = self._send(pb.TransactionRequest(
            commit=pb.TransactionCommit(request_id=request_id or "")))
        self._end()
        self.replayed = response.committed.replayed
        return response.committed.commit_token

    def rollback(self):
        response = self._send(pb.TransactionRequest(rollback=pb.TransactionRollback()))
        self._end()
        return response.rolled_back.rolled_back

    def _end(self):
        self._finished = True
        self._requests.put(None)

    def close(self):
        """Ends the stream; an open transaction is rolled back at once."""
        if not self._finished:
            self._finished = True
            self._call.cancel()
            self._requests.put(None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

"""The asyncio client (grpc.aio): the same calls as `Client`, awaited, with the
same value conversion and the same `transaction(fn)` retry helper.

    from sqlgate_client.aio import AsyncClient
    db = AsyncClient("localhost:50051")
    async def transfer(tx):
        await tx.execute("UPDATE accounts SET balance = balance - 1 WHERE id = ?", [1])
        await tx.execute("UPDATE accounts SET balance = balance + 1 WHERE id = ?", [2])
    await db.transaction(transfer)
"""
import asyncio

import grpc
from sqlgate.v1 import sqlgate_pb2 as pb
from sqlgate.v1 import sqlgate_pb2_grpc as pb_grpc

from .client import Result, _OpenTransaction, _consistency, _options, _result
from .errors import SqlgateError, TransactionEnded, from_rpc_error
from .retry import new_request_id, policy_for, unanswered_commit
from .values import from_value, to_value


class AsyncClient:
    """An asyncio client of one gateway; `token` is sent as a bearer token,
    `credentials` (grpc.ssl_channel_credentials(...)) turn TLS on."""

    def __init__(self, target="localhost:50051", *, token=None, credentials=None):
        self._channel = (grpc.aio.secure_channel(target, credentials) if credentials
                         else grpc.aio.insecure_channel(target))
        self._stub = pb_grpc.DatabaseStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None

    async def _call(self, method, request, timeout=None):
        try:
            return await getattr(self._stub, method)(request, metadata=self._metadata, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def execute(self, sql, params=(), *, transaction_id="", max_rows=0,
                      max_staleness=None, min_commit_token=None, timeout=None, request_id=None):
        """Runs one statement; autocommit unless transaction_id is given.
        request_id: see Client.execute."""
        request = pb.ExecuteRequest(sql=sql, params=[to_value(p) for p in params],
                                    transaction_id=transaction_id or "", max_rows=max_rows,
                                    read_consistency=_consistency(max_staleness, min_commit_token),
                                    request_id=request_id or "")
        return _result(await self._call("Execute", request, timeout))

    async def stream(self, sql, params=(), *, transaction_id="", max_staleness=None,
                     min_commit_token=None):
        """Yields rows (tuples) of a result of any size, as the client reads them."""
        request = pb.ExecuteRequest(sql=sql, params=[to_value(p) for p in params],
                                    transaction_id=transaction_id or "",
                                    read_consistency=_consistency(max_staleness, min_commit_token))
        call = self._stub.ExecuteStream(request, metadata=self._metadata)
        try:
            async for message in call:
                if message.WhichOneof("part") == "rows":
                    for row in message.rows.rows:
                        yield tuple(from_value(v) for v in row.values)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()  # a no-op after the end; stops the statement if the caller left early

    async def begin(self, isolation=None, read_only=False):
        response = await self._call("Begin", pb.BeginRequest(options=_options(isolation, read_only)))
        return response.transaction_id

    async def commit(self, transaction_id, *, request_id=None):
        """Commits; returns the commit token ("" unless the gateway has replicas)."""
        return (await self.commit_result(transaction_id, request_id=request_id)).commit_token

    async def commit_result(self, transaction_id, *, request_id=None):
        """Commits; returns a Result with the commit token and `replayed`
        (see Client.commit_result)."""
        request = pb.CommitRequest(transaction_id=transaction_id, request_id=request_id or "")
        response = await self._call("Commit", request)
        return Result(commit_token=response.commit_token, replayed=response.replayed)

    async def rollback(self, transaction_id):
        response = await self._call("Rollback", pb.RollbackRequest(transaction_id=transaction_id))
        return response.rolled_back

    async def batch(self, statements, *, request_id=None):
        """Runs [(sql, params), ...] in one transaction that commits at the end
        (request_id: see Client.batch)."""
        request = pb.ExecuteBatchRequest(statements=[
            pb.Statement(sql=sql, params=[to_value(p) for p in params]) for sql, params in statements
        ], request_id=request_id or "")
        response = await self._call("ExecuteBatch", request)
        return [_result(r, response.replayed) for r in response.results]

    async def transaction(self, fn, *, policy=None, retries=None, isolation=None, read_only=False,
                          request_id=None):
        """Runs `await fn(tx)` in a transaction and commits; reruns all of it
        when it fails retryably, with the jittered exponential back-off of
        `policy` (see Client.transaction and RetryPolicy: default 25 runs at
        most); rolls back and re-raises anything else (cancellation included).
        Every run's commit carries one request id (`request_id` or a fresh
        UUID), so a commit whose answer was lost is rerun safely (see
        Client.transaction)."""
        policy = policy_for(retries, policy)
        request_id = request_id or new_request_id()
        for run in range(1, policy.attempts + 1):
            tx = None
            committing = False
            try:
                tx = AsyncTransaction(self, await self.begin(isolation, read_only))
                value = await fn(tx)
                if tx.ended_by is not None:
                    raise TransactionEnded(tx.ended_by)
                committing = True
                await self.commit(tx.id, request_id=request_id)
                return value
            except SqlgateError as error:
                if tx is not None:
                    await asyncio.shield(self._quiet_rollback(tx.id))
                cause = error.cause if isinstance(error, TransactionEnded) else error
                retry = policy.retryable(cause) or (committing and unanswered_commit(cause))
                if run == policy.attempts or not retry:
                    raise
                await asyncio.sleep(policy.delay(run))
            except BaseException:
                if tx is not None:
                    await asyncio.shield(self._quiet_rollback(tx.id))
                raise

    async def _quiet_rollback(self, transaction_id):
        try:
            await self.rollback(transaction_id)
        except Exception:  # the transaction may already be gone
            pass

    async def close(self):
        await self._channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False


class AsyncTransaction(_OpenTransaction):
    """An open transaction, as handed to AsyncClient.transaction(fn); like
    Transaction, it raises TransactionEnded on every call once an error ended
    the transaction (`ended_by`)."""

    async def execute(self, sql, params=()):
        self._check()
        try:
            return await self._client.execute(sql, params, transaction_id=self.id)
        except SqlgateError as error:
            self._failed(error)
            raise

    async def stream(self, sql, params=()):
        self._check()
        try:
            async for row in self._client.stream(sql, params, transaction_id=self.id):
                yield row
        except SqlgateError as error:
            self._failed(error)
            raise

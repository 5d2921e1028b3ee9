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
import random

import grpc
from sqlgate.v1 import sqlgate_pb2 as pb
from sqlgate.v1 import sqlgate_pb2_grpc as pb_grpc

from .client import _consistency, _options, _result
from .errors import TransactionAborted, from_rpc_error
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
                      max_staleness=None, min_commit_token=None, timeout=None):
        """Runs one statement; autocommit unless transaction_id is given."""
        request = pb.ExecuteRequest(sql=sql, params=[to_value(p) for p in params],
                                    transaction_id=transaction_id or "", max_rows=max_rows,
                                    read_consistency=_consistency(max_staleness, min_commit_token))
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

    async def commit(self, transaction_id):
        """Commits; returns the commit token ("" unless the gateway has replicas)."""
        return (await self._call("Commit", pb.CommitRequest(transaction_id=transaction_id))).commit_token

    async def rollback(self, transaction_id):
        response = await self._call("Rollback", pb.RollbackRequest(transaction_id=transaction_id))
        return response.rolled_back

    async def batch(self, statements):
        """Runs [(sql, params), ...] in one transaction that commits at the end."""
        request = pb.ExecuteBatchRequest(statements=[
            pb.Statement(sql=sql, params=[to_value(p) for p in params]) for sql, params in statements
        ])
        return [_result(r) for r in (await self._call("ExecuteBatch", request)).results]

    async def transaction(self, fn, *, retries=10, isolation=None, read_only=False):
        """Runs `await fn(tx)` in a transaction and commits; reruns all of it on
        ABORTED (deadlock, lock wait timeout, expired), up to `retries` times;
        rolls back and re-raises anything else (cancellation included)."""
        for attempt in range(retries + 1):
            tx = AsyncTransaction(self, await self.begin(isolation, read_only))
            try:
                value = await fn(tx)
                await self.commit(tx.id)
                return value
            except TransactionAborted:
                await self._quiet_rollback(tx.id)
                if attempt == retries:
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
            except BaseException:
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


class AsyncTransaction:
    """An open transaction, as handed to AsyncClient.transaction(fn)."""

    def __init__(self, client, transaction_id):
        self._client = client
        self.id = transaction_id

    async def execute(self, sql, params=()):
        return await self._client.execute(sql, params, transaction_id=self.id)

    def stream(self, sql, params=()):
        return self._client.stream(sql, params, transaction_id=self.id)

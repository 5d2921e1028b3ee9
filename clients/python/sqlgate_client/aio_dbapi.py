"""An asyncio DB-API for sqlgate (grpc.aio), shaped as aiomysql's is: the
calls of sqlgate_client.dbapi, awaited. SQLAlchemy's async dialect
(`sqlgate+aio://`, sqlgate_client.sqlalchemy_dialect) adapts it with
SQLAlchemy's AsyncAdapt_dbapi_* classes, as it adapts aiomysql and asyncmy.

    from sqlgate_client import aio_dbapi
    conn = await aio_dbapi.connect("localhost:50051")
    cur = conn.cursor()
    await cur.execute("SELECT id FROM t WHERE n > ?", [1])
    rows = await cur.fetchall()
    await conn.commit()
    await conn.close()

The transaction rules are the DB-API driver's (see dbapi.py and README.md):
inline begin with the first statement, Commit/Rollback RPCs, an error that
ends the transaction makes every later call raise until rollback(), results
of any size buffered by the plain cursor (reads refused as RESULT_TOO_LARGE
run again through ExecuteStream), AsyncSSCursor streams a batch at a time,
DDL refused inside no transaction reruns as an autocommit call. Request ids
too: `await conn.commit(request_id=...)` or `conn.request_id`, and
`execute(..., request_id=...)` in autocommit mode; `replayed` on both.
"""
import grpc

from sqlgate.v1 import sqlgate_pb2 as pb
from sqlgate.v1 import sqlgate_pb2_grpc as pb_grpc

from . import dbapi as _sync
from .dbapi import (  # noqa: F401 (the module's DB-API names)
    BINARY, DATETIME, NUMBER, ROWID, STRING, Binary, DatabaseError, DataError, Date, DateFromTicks,
    Error, IntegrityError, InterfaceError, InternalError, NotSupportedError, OperationalError,
    ProgrammingError, Time, TimeFromTicks, Timestamp, TimestampFromTicks, Warning, apilevel, paramstyle,
)
from .dbapi import (_C, _RETURNING, _UNANSWERED_COMMIT, _add_params, _describe, _ends_transaction, _is_read,
                    _no_stream_request_id, _row, _translate)

threadsafety = 1


async def connect(target, token=None, tls=None, timeout=None, autocommit=False, isolation_level=None,
                  read_only=False):
    """Opens an asyncio connection to the gateway at target ("host:port");
    the options are dbapi.connect()'s."""
    return AsyncConnection(target, token=token, tls=tls, timeout=timeout, autocommit=autocommit,
                           isolation_level=isolation_level, read_only=read_only)


class AsyncConnection:
    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError

    def __init__(self, target, token=None, tls=None, timeout=None, autocommit=False, isolation_level=None,
                 read_only=False):
        if tls is None or tls is False:
            channel = grpc.aio.insecure_channel(target)
        elif tls is True:
            channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials())
        elif isinstance(tls, str):
            with open(tls, "rb") as f:
                roots = f.read()
            channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots))
        else:
            raise InterfaceError("tls must be None, False, True or the path of a CA PEM file")
        self._channel = channel
        self._stub = pb_grpc.DatabaseStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._timeout = timeout
        self._autocommit = bool(autocommit)
        self._isolation = pb.ISOLATION_LEVEL_DEFAULT
        self.isolation_level = isolation_level
        self.read_only = bool(read_only)
        self._transaction_id = None
        self._ended_by = None
        self._streaming = None
        self._closed = False
        self.max_batch_statements = _sync.MAX_BATCH_STATEMENTS
        self.max_batch_bytes = _sync.MAX_BATCH_BYTES
        self.request_id = None  # as dbapi.Connection.request_id
        self.replayed = False

    # -- settings (as dbapi.Connection)

    isolation_level = _sync.Connection.isolation_level
    _begin_options = _sync.Connection._begin_options
    _fits_one_batch = _sync.Connection._fits_one_batch
    _chunks = _sync.Connection._chunks
    _check_open = _sync.Connection._check_open
    _check_transaction = _sync.Connection._check_transaction
    _check_request_id = _sync.Connection._check_request_id
    transaction_id = _sync.Connection.transaction_id
    transaction_ended_by = _sync.Connection.transaction_ended_by
    closed = _sync.Connection.closed

    @property
    def autocommit(self):
        return self._autocommit

    async def set_autocommit(self, value):
        """Turning autocommit on commits an open transaction, as in dbapi."""
        value = bool(value)
        if value and not self._autocommit:
            await self.commit()
        self._autocommit = value

    def cursor(self, cursorclass=None):
        self._check_open()
        return (cursorclass or AsyncCursor)(self)

    async def ping(self):
        self._check_open()
        await self._unary("Execute", pb.ExecuteRequest(sql="SELECT 1"))
        return True

    async def autocommit_row(self, sql):
        """The first row of `sql` run as an autocommit call, outside any transaction."""
        self._check_open()
        response = await self._unary("Execute", pb.ExecuteRequest(sql=sql))
        return _row(response.rows[0]) if response.rows else None

    async def commit(self, request_id=None):
        """Commits the open transaction; request_id as dbapi.Connection.commit."""
        self._check_open()
        await self._finish_stream()
        self._check_transaction()
        request_id, self.request_id, self.replayed = request_id or self.request_id, None, False
        transaction_id = self._transaction_id
        if not transaction_id:
            return
        self._transaction_id = None
        try:
            response = await self._unary("Commit", pb.CommitRequest(transaction_id=transaction_id,
                                                                    request_id=request_id or ""))
        except Error as error:
            if error.code in _UNANSWERED_COMMIT:
                await self._quiet_rollback(transaction_id)  # see dbapi._UNANSWERED_COMMIT
            raise
        self.replayed = response.replayed

    async def rollback(self):
        self._check_open()
        await self._finish_stream(cancel=True)
        self._ended_by = None
        self.request_id = None
        transaction_id = self._transaction_id
        if not transaction_id:
            return
        self._transaction_id = None
        await self._unary("Rollback", pb.RollbackRequest(transaction_id=transaction_id))

    async def close(self):
        if self._closed:
            return
        try:
            if self._transaction_id:
                await self.rollback()
        except Error:
            pass
        finally:
            self._closed = True
            await self._channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, kind, value, traceback):
        try:
            if not self._closed:
                if kind is None:
                    await self.commit()
                else:
                    await self.rollback()
        finally:
            await self.close()
        return False

    # -- calls

    async def _unary(self, method, request):
        try:
            return await getattr(self._stub, method)(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as rpc_error:
            raise _translate(rpc_error) from None

    async def _failed(self, error, transaction_id):
        if transaction_id and transaction_id == self._transaction_id and _ends_transaction(error):
            self._transaction_id = None
            self._ended_by = error
            if error.code in (_C.DEADLINE_EXCEEDED, _C.CANCELLED, _C.UNAVAILABLE, _C.UNKNOWN):
                await self._quiet_rollback(transaction_id)

    async def _quiet_rollback(self, transaction_id):
        try:
            await self._stub.Rollback(pb.RollbackRequest(transaction_id=transaction_id),
                                      metadata=self._metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError:
            pass

    async def _finish_stream(self, discard=True, cancel=False):
        cursor, self._streaming = self._streaming, None
        if cursor is not None:
            await cursor._end_stream(cancel=cancel, discarded=discard)

    _request = _sync.Connection._request

    async def _execute(self, sql, params, request_id=None):
        self._check_open()
        await self._finish_stream()
        request, began = self._request(sql, params, request_id)
        try:
            response = await self._unary("Execute", request)
        except Error as error:
            if began and error.reason == "IMPLICIT_COMMIT_IN_TRANSACTION":
                return await self._unary("Execute", pb.ExecuteRequest(sql=sql, params=request.params))
            await self._failed(error, request.transaction_id)
            raise
        if began and response.transaction_id:
            self._transaction_id = response.transaction_id
        return response

    async def _open_stream(self, sql, params):
        """Starts an ExecuteStream; returns (call, header, transaction_id or None)."""
        self._check_open()
        await self._finish_stream()
        request, began = self._request(sql, params)
        call = self._stub.ExecuteStream(request, metadata=self._metadata, timeout=self._timeout)
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as rpc_error:
            error = _translate(rpc_error)
            if began and error.reason == "IMPLICIT_COMMIT_IN_TRANSACTION":
                call = self._stub.ExecuteStream(pb.ExecuteRequest(sql=sql, params=request.params),
                                                metadata=self._metadata, timeout=self._timeout)
                try:
                    first = await call.read()
                except grpc.aio.AioRpcError as rpc_error2:
                    raise _translate(rpc_error2) from None
                return call, first.header, None
            await self._failed(error, request.transaction_id)
            raise error from None
        header = first.header
        if began and header.transaction_id:
            self._transaction_id = header.transaction_id
        return call, header, (None if self._autocommit else self._transaction_id)

    async def _read_stream(self, sql, params):
        call, header, transaction_id = await self._open_stream(sql, params)
        rows, summary = [], None
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                part = message.WhichOneof("part")
                if part == "rows":
                    rows.extend(_row(r) for r in message.rows.rows)
                elif part == "summary":
                    summary = message.summary
        except grpc.aio.AioRpcError as rpc_error:
            error = _translate(rpc_error)
            if transaction_id is not None:
                await self._failed(error, transaction_id)
            raise error from None
        if summary is None:
            return header.columns, rows, 0, 0
        return header.columns, rows, summary.rows_affected, summary.last_insert_id

    async def _execute_batch(self, statements, request_id=None, batch=None):
        """As dbapi.Connection._execute_batch: returns (results, replayed)."""
        self._check_open()
        await self._finish_stream()
        self._check_transaction()
        self._check_request_id(request_id)
        if not statements:
            return [], False
        if self._autocommit and self._fits_one_batch(statements):
            if batch is None:
                request = pb.ExecuteBatchRequest(statements=statements, combine_inserts=True)
            else:
                request = batch
            request.request_id = request_id or ""
            response = await self._unary("ExecuteBatch", request)
            return list(response.results), response.replayed
        results, transaction_id, began = [], self._transaction_id, False
        if not transaction_id:
            first = statements[0]
            try:
                response = await self._unary("Execute", pb.ExecuteRequest(
                    sql=first.sql, params=first.params, begin=self._begin_options()))
            except Error as error:
                error.statement_index = 0
                raise
            transaction_id, began = response.transaction_id, True
            if not self._autocommit:
                self._transaction_id = transaction_id
            results.append(response)
        done = len(results)
        try:
            for chunk in self._chunks(statements[done:]):
                request = pb.ExecuteBatchRequest(statements=chunk, transaction_id=transaction_id,
                                                  combine_inserts=True)
                try:
                    results.extend((await self._unary("ExecuteBatch", request)).results)
                except Error as error:
                    error.statement_index = done + (error.statement_index or 0)
                    raise
                done += len(chunk)
            if self._autocommit:
                committed = await self._unary("Commit", pb.CommitRequest(transaction_id=transaction_id,
                                                                         request_id=request_id or ""))
                if committed.replayed:
                    return [], True
        except Error as error:
            if began:
                if self._transaction_id == transaction_id:
                    self._transaction_id = None
                if not _ends_transaction(error) or error.code in (_C.DEADLINE_EXCEEDED, _C.CANCELLED,
                                                                  _C.UNAVAILABLE, _C.UNKNOWN):
                    await self._quiet_rollback(transaction_id)
            else:
                await self._failed(error, transaction_id)
            raise
        return results, False


class AsyncCursor:
    """The plain cursor: buffers the whole result, any size (see dbapi.Cursor)."""

    def __init__(self, connection):
        self.connection = connection
        self.arraysize = 1
        self.description = None
        self.rowcount = -1
        self.lastrowid = None
        self.rownumber = None
        self.replayed = False
        self._rows = []
        self._closed = False

    _set_result = _sync.Cursor._set_result
    _set_batch_result = _sync.Cursor._set_batch_result
    _reset = _sync.Cursor._reset
    _check_open = _sync.Cursor._check_open
    _check_result = _sync.Cursor._check_result

    async def execute(self, sql, params=None, *, request_id=None):
        """request_id: see dbapi.Cursor.execute (autocommit mode only)."""
        self._check_open()
        self._reset()
        conn = self.connection
        if _RETURNING.search(sql):
            _no_stream_request_id(request_id)
            self._set_result(*await conn._read_stream(sql, params))
            return self.rowcount
        try:
            response = await conn._execute(sql, params, request_id)
        except OperationalError as error:
            if error.reason != "RESULT_TOO_LARGE" or not _is_read(sql):
                raise
            self._set_result(*await conn._read_stream(sql, params))
            return self.rowcount
        self._set_result(response.columns, [_row(r) for r in response.rows],
                         response.rows_affected, response.last_insert_id)
        self.replayed = response.replayed
        return self.rowcount

    async def executemany(self, sql, seq_of_params, *, request_id=None):
        self._check_open()
        self._reset()
        batch = pb.ExecuteBatchRequest(combine_inserts=True)
        add = batch.statements.add
        for p in seq_of_params:
            _add_params(add(sql=sql).params, p)
        self._set_batch_result(*await self.connection._execute_batch(batch.statements, request_id, batch))
        return self.rowcount

    async def fetchone(self):
        return _sync.Cursor.fetchone(self)

    async def fetchmany(self, size=None):
        return _sync.Cursor.fetchmany(self, size)

    async def fetchall(self):
        return _sync.Cursor.fetchall(self)

    async def setinputsizes(self, *sizes):
        pass

    def setoutputsize(self, size, column=None):
        pass

    async def nextset(self):
        self._check_open()
        return None

    async def close(self):
        self._closed = True
        self._rows = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False

    def __aiter__(self):
        return self

    async def __anext__(self):
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class AsyncSSCursor(AsyncCursor):
    """The unbuffered cursor: ExecuteStream read a batch at a time as rows are
    fetched (see dbapi.SSCursor for the rules inside a transaction)."""

    def __init__(self, connection):
        super().__init__(connection)
        self._call = None
        self._batch = []
        self._index = 0
        self._fetched = 0
        self._discarded = False
        self._in_transaction = False

    async def execute(self, sql, params=None, *, request_id=None):
        self._check_open()
        _no_stream_request_id(request_id)
        await self._end_stream(cancel=False, discarded=False)
        self._reset()
        call, header, transaction_id = await self.connection._open_stream(sql, params)
        self._call, self._in_transaction = call, transaction_id is not None
        if header.columns:
            self.description = tuple(_describe(c) for c in header.columns)
            self.rownumber = 0
            if self._in_transaction:
                self.connection._streaming = self
        else:
            await self._read_to_end()
        return self.rowcount

    def _reset(self):
        super()._reset()
        self._batch, self._index, self._fetched, self._discarded = [], 0, 0, False

    def _check_result(self):
        AsyncCursor._check_result(self)
        if self._discarded:
            raise ProgrammingError("the rest of this result was discarded: another call ran in the "
                                   "same transaction before it was fetched")

    _stream_over = _sync.SSCursor._stream_over

    async def _next_message(self):
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as rpc_error:
            error = _translate(rpc_error)
            self._stream_over()
            if self._in_transaction:
                await self.connection._failed(error, self.connection._transaction_id)
            raise error from None
        return None if message is grpc.aio.EOF else message

    async def _fill(self):
        while self._call is not None:
            message = await self._next_message()
            part = message.WhichOneof("part") if message is not None else None
            if part == "rows":
                if message.rows.rows:
                    self._batch, self._index = message.rows.rows, 0
                    return True
            elif part == "summary" or message is None:
                if message is not None:
                    summary = message.summary
                    self.lastrowid = summary.last_insert_id or None
                    self.rowcount = summary.row_count if self.description else summary.rows_affected
                else:
                    self.rowcount = self._fetched
                self._stream_over()
        return False

    async def _read_to_end(self):
        dropped = len(self._batch) - self._index
        self._batch = []
        while await self._fill():
            dropped += len(self._batch)
            self._batch = []
        return dropped

    async def _end_stream(self, cancel, discarded):
        if self._call is None:
            return
        dropped = True
        if cancel or not self._in_transaction:
            self._call.cancel()
            self._stream_over()
        else:
            try:
                dropped = await self._read_to_end() > 0
            except Error:
                pass
        self._batch = []
        self._discarded = discarded and dropped

    async def fetchone(self):
        self._check_result()
        if self._index >= len(self._batch) and not await self._fill():
            return None
        row = _row(self._batch[self._index])
        self._index += 1
        self._fetched += 1
        self.rownumber = self._fetched
        return row

    async def fetchmany(self, size=None):
        size = self.arraysize if size is None else size
        rows = []
        while len(rows) < size:
            row = await self.fetchone()
            if row is None:
                break
            rows.append(row)
        if not rows:
            self._check_result()
        return rows

    async def fetchall(self):
        rows = []
        while True:
            row = await self.fetchone()
            if row is None:
                return rows
            rows.append(row)

    async def close(self):
        if not self._closed and not self.connection._closed:
            await self._end_stream(cancel=False, discarded=False)
        await super().close()
        self._batch = []


SSCursor = AsyncSSCursor
Cursor = AsyncCursor

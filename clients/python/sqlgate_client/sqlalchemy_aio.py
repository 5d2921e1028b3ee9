"""SQLAlchemy's asyncio dialect for sqlgate: `sqlgate+aio://host:port` (also
`mysql+sqlgate_aio://`), for create_async_engine().

    from sqlalchemy.ext.asyncio import create_async_engine, AsyncSession
    engine = create_async_engine("sqlgate+aio://localhost:50051")

It is the sqlgate dialect (sqlalchemy_dialect.SqlgateDialect: MySQL's SQL,
types and reflection, the same URL options) on the asyncio DB-API
(aio_dbapi, grpc.aio), adapted the way SQLAlchemy adapts aiomysql and
asyncmy: its AsyncAdapt_dbapi_* classes run the awaitable calls from
SQLAlchemy's synchronous core inside a greenlet.
"""
import collections

from sqlalchemy import pool
from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_cursor,
    AsyncAdapt_dbapi_module,
    AsyncAdapt_dbapi_ss_cursor,
)
from sqlalchemy.dialects import registry
from sqlalchemy.util.concurrency import await_only

from .sqlalchemy_dialect import SqlgateDialect, SqlgateExecutionContext


class AsyncAdapt_sqlgate_cursor(AsyncAdapt_dbapi_cursor):
    __slots__ = ()

    @property
    def connection(self):
        """The adapted connection (the dialect's DDL handling reads its transaction)."""
        return self._adapt_connection

    @property
    def replayed(self):
        return self._cursor.replayed

    # execute/executemany as SQLAlchemy's adapter has them, with the driver's
    # request_id extension passed through.

    def execute(self, operation, parameters=None, *, request_id=None):
        try:
            return self.await_(self._execute_async(operation, parameters, request_id))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation, seq_of_parameters, *, request_id=None):
        try:
            return self.await_(self._executemany_async(operation, seq_of_parameters, request_id))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _execute_async(self, operation, parameters, request_id=None):
        async with self._adapt_connection._execute_mutex:
            result = await self._cursor.execute(operation, parameters, request_id=request_id)
            if self._cursor.description and not self.server_side:
                self._rows = collections.deque(await self._cursor.fetchall())
            return result

    async def _executemany_async(self, operation, seq_of_parameters, request_id=None):
        async with self._adapt_connection._execute_mutex:
            return await self._cursor.executemany(operation, seq_of_parameters, request_id=request_id)


class AsyncAdapt_sqlgate_ss_cursor(AsyncAdapt_dbapi_ss_cursor, AsyncAdapt_sqlgate_cursor):
    __slots__ = ()

    def _make_new_cursor(self, connection):
        from . import aio_dbapi

        return connection.cursor(aio_dbapi.AsyncSSCursor)


class AsyncAdapt_sqlgate_connection(AsyncAdapt_dbapi_connection):
    __slots__ = ()

    _cursor_cls = AsyncAdapt_sqlgate_cursor
    _ss_cursor_cls = AsyncAdapt_sqlgate_ss_cursor

    def ping(self):
        return self.await_(self._connection.ping())

    def autocommit_row(self, sql):
        return self.await_(self._connection.autocommit_row(sql))

    @property
    def autocommit(self):
        return self._connection.autocommit

    @autocommit.setter
    def autocommit(self, value):
        self.await_(self._connection.set_autocommit(value))

    @property
    def isolation_level(self):
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value):
        self._connection.isolation_level = value

    @property
    def transaction_id(self):
        return self._connection.transaction_id

    @property
    def request_id(self):
        return self._connection.request_id

    @request_id.setter
    def request_id(self, value):
        self._connection.request_id = value

    @property
    def replayed(self):
        return self._connection.replayed

    @property
    def transaction_ended_by(self):
        return self._connection.transaction_ended_by

    @property
    def closed(self):
        return self._connection.closed


class AsyncAdapt_sqlgate_dbapi(AsyncAdapt_dbapi_module):
    """aio_dbapi seen as a synchronous DB-API module by SQLAlchemy's core."""

    def __init__(self, aio_dbapi):
        self.aio_dbapi = aio_dbapi
        for name in ("Warning", "Error", "InterfaceError", "DataError", "DatabaseError", "OperationalError",
                     "IntegrityError", "ProgrammingError", "InternalError", "NotSupportedError",
                     "NUMBER", "STRING", "DATETIME", "BINARY", "ROWID", "Binary", "Date", "Time",
                     "Timestamp", "apilevel", "paramstyle", "threadsafety"):
            setattr(self, name, getattr(aio_dbapi, name))
        self.SSCursor = aio_dbapi.AsyncSSCursor

    def connect(self, *args, **kwargs):
        return AsyncAdapt_sqlgate_connection(self, await_only(self.aio_dbapi.connect(*args, **kwargs)))


class SqlgateAsyncExecutionContext(SqlgateExecutionContext):
    def create_server_side_cursor(self):
        return self._dbapi_connection.cursor(server_side=True)


class SqlgateAsyncDialect(SqlgateDialect):
    driver = "sqlgate_aio"
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = SqlgateAsyncExecutionContext

    @classmethod
    def import_dbapi(cls):
        from . import aio_dbapi

        return AsyncAdapt_sqlgate_dbapi(aio_dbapi)

    @classmethod
    def get_pool_class(cls, url):
        return pool.AsyncAdaptedQueuePool

    def get_driver_connection(self, connection):
        return connection._connection


dialect = SqlgateAsyncDialect

registry.register("sqlgate.aio", "sqlgate_client.sqlalchemy_aio", "SqlgateAsyncDialect")
registry.register("mysql.sqlgate_aio", "sqlgate_client.sqlalchemy_aio", "SqlgateAsyncDialect")
registry.register("mariadb.sqlgate_aio", "sqlgate_client.sqlalchemy_aio", "SqlgateAsyncDialect")

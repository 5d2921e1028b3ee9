"""A SQLAlchemy 2.0 dialect for sqlgate, on top of the DB-API driver
(sqlgate_client.dbapi) and SQLAlchemy's MySQL dialect (its SQL compiler,
types and reflection).

    from sqlalchemy import create_engine
    engine = create_engine("sqlgate://localhost:50051")
    engine = create_engine("sqlgate://localhost:50051/?token=s3cret&tls=/etc/ca.pem&timeout=10")

The URL names the gateway (host:port); its query holds the connection
options: token, tls (true, false, or the path of a CA PEM file), timeout
(seconds, every call). The gateway serves one database, so the URL names no
database, user or password (a password, if given, is used as the token).

The package registers the dialect under SQLAlchemy's "sqlalchemy.dialects"
entry points as "sqlgate" and "mysql.sqlgate" (so "mysql+sqlgate://" works
too); importing this module also registers it, for use from a source tree.
The dialect's name is "mysql": MySQL compilation, `mysql_*` table options
and tools that key on the dialect name (Alembic) work as with any MySQL
driver.

What the gateway changes compared with a MySQL driver (see README.md):
- transactions begin inline with the first statement and end with the
  driver's commit()/rollback(); SAVEPOINT (Session.begin_nested) and XA
  (two-phase) are refused by the gateway: NotImplementedError here;
- isolation levels are per transaction (TransactionOptions.isolation), set
  with execution_options(isolation_level=...) or create_engine(
  isolation_level=...); "AUTOCOMMIT" switches the driver to autocommit;
- DDL inside an open transaction: MySQL commits the transaction implicitly
  before DDL, the gateway refuses it (IMPLICIT_COMMIT_IN_TRANSACTION). By
  default (create_engine(..., implicit_commit_ddl=True)) the dialect does
  what MySQL does: it commits the open transaction, then runs the DDL on
  its own. With implicit_commit_ddl=False the refusal surfaces as
  sqlalchemy.exc.ProgrammingError. A transaction with a pending request_id
  (below) is never committed implicitly: that commit would spend the id on
  the work before the DDL and leave the work after it unprotected, so the
  DDL raises ProgrammingError (nothing ran) and the transaction stays
  open;
- stream_results / yield_per use the driver's SSCursor (ExecuteStream);
  without them a result is capped by the gateway (RESULT_TOO_LARGE);
- UPDATE rowcounts are rows *matched*, as with PyMySQL (the gateway's
  connections set CLIENT_FOUND_ROWS: --found-rows, on by default), so
  supports_sane_rowcount is True and the ORM checks them: a stale
  version_id_col UPDATE or DELETE raises StaleDataError. A gateway started
  with --found-rows false reports rows changed: create_engine(...,
  found_rows=False) turns the checks off again;
- request ids (README "Request ids"): the execution option request_id on a
  Connection (conn.execution_options(request_id=...),
  session.connection(execution_options={"request_id": ...})) names the
  commit of its transaction; with AUTOCOMMIT, a statement's request_id
  option names that statement's write.
"""
import grpc
from sqlalchemy import exc, util
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.dialects import registry
from sqlalchemy.engine.characteristics import ConnectionCharacteristic
from sqlalchemy.dialects.mysql.base import MySQLCompiler, MySQLDialect, MySQLExecutionContext
from sqlalchemy.dialects.mysql.json import JSON as _MySQLJSON
from sqlalchemy.dialects.mysql.base import colspecs as _mysql_colspecs
from sqlalchemy import types as sqltypes

_ISOLATION_LEVELS = ("SERIALIZABLE", "READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ")


class _SqlgateJSON(_MySQLJSON):
    """The driver already decodes JSON columns that the server types as JSON
    (MySQL); MariaDB's JSON is LONGTEXT and comes back as text. Decode text only."""

    def result_processor(self, dialect, coltype):
        string_process = super().result_processor(dialect, coltype)

        def process(value):
            if isinstance(value, (str, bytes)):
                return string_process(value)
            return value

        return process


class RequestIdCharacteristic(ConnectionCharacteristic):
    """The execution option request_id on a Connection: the id the driver's
    next commit() carries (its Connection.request_id, which every commit and
    rollback clear). A connection characteristic, as isolation_level is, so
    that SQLAlchemy clears it when the connection goes back to the pool and
    the next checkout never commits under a stale id. Not transactional: it
    may be set in an open transaction, before its commit."""

    transactional = False

    def reset_characteristic(self, dialect, dbapi_conn):
        dbapi_conn.request_id = None

    def set_characteristic(self, dialect, dbapi_conn, value):
        dbapi_conn.request_id = value

    def get_characteristic(self, dialect, dbapi_conn):
        return dbapi_conn.request_id


class SqlgateCompiler(MySQLCompiler):
    def _format_frame_clause(self, range_, **kw):
        # The gateway runs every statement as a server-side prepared
        # statement, and MySQL/MariaDB accept no placeholder in a window
        # frame (`ROWS BETWEEN ? PRECEDING`: a syntax error; MySQL drivers
        # that interpolate client-side never send one). The bounds are
        # integers and part of SQLAlchemy's cache key: render them inline.
        return super()._format_frame_clause(range_, **{**kw, "literal_binds": True})


class SqlgateExecutionContext(MySQLExecutionContext):
    def create_server_side_cursor(self):
        return self._dbapi_connection.cursor(self.dialect.dbapi.SSCursor)

    # Rows inserted by the batches of an "insertmanyvalues" executemany
    # (see SqlgateDialect.use_insertmanyvalues_wo_returning): their sum is the
    # rowcount, as PyMySQL's executemany reports it (pandas' to_sql returns it).
    _imv_rowcount = None

    def post_exec(self):
        super().post_exec()
        if self._imv_rowcount is not None and self._rowcount is None:
            self._rowcount = self._imv_rowcount

    def _setup_result_proxy(self):
        result = super()._setup_result_proxy()
        # SQLAlchemy 2.0 applies the yield_per execution option to compiled
        # SELECTs only: for text() (and exec_driver_sql) it is dropped, so
        # Result.partitions() without a size fetches the whole result at once
        # (its fetchmany(None) is a fetchall), whatever the driver — the
        # client grew by ~330 MiB per million rows. Apply it here too, as
        # SQLAlchemy's own documentation of yield_per with text() expects.
        yield_per = self.execution_options.get("yield_per")
        if (yield_per and self.is_text and self._is_server_side and not result._soft_closed
                and result.returns_rows and not result._yield_per):
            result = result.yield_per(yield_per)
        return result


class SqlgateDialect(MySQLDialect):
    driver = "sqlgate"
    name = "mysql"
    supports_statement_cache = True
    supports_unicode_statements = True
    supports_native_decimal = True
    supports_server_side_cursors = True
    # The gateway reports rows matched for UPDATE (CLIENT_FOUND_ROWS,
    # --found-rows), as PyMySQL's connections do; executemany's rowcount is
    # the sum over its statements.
    supports_sane_rowcount = True
    supports_sane_multi_rowcount = True
    default_paramstyle = "qmark"
    # executemany of an INSERT (pandas to_sql, ORM bulk inserts): SQLAlchemy
    # sends multi-row INSERT ... VALUES (...), (...) statements, as PyMySQL's
    # executemany does, instead of one statement per row; each within the
    # gateway's --max-params (4096 by default).
    use_insertmanyvalues_wo_returning = True
    insertmanyvalues_max_parameters = 4000
    execution_ctx_cls = SqlgateExecutionContext
    statement_compiler = SqlgateCompiler
    colspecs = util.update_copy(_mysql_colspecs, {sqltypes.JSON: _SqlgateJSON})
    connection_characteristics = util.immutabledict(
        {**MySQLDialect.connection_characteristics, "request_id": RequestIdCharacteristic()})

    def __init__(self, implicit_commit_ddl=True, found_rows=True, **kwargs):
        super().__init__(**kwargs)
        self.implicit_commit_ddl = implicit_commit_ddl
        if not found_rows:
            # A gateway started with --found-rows false: UPDATE counts rows
            # changed, so rowcounts cannot be checked.
            self.supports_sane_rowcount = False
            self.supports_sane_multi_rowcount = False

    @classmethod
    def import_dbapi(cls):
        from sqlgate_client import dbapi

        return dbapi

    def set_engine_execution_options(self, engine, opts):
        if opts.get("request_id"):
            # Every connection would commit under the one id: each commit
            # after the first would be answered as a replay and rolled back.
            raise exc.ArgumentError("request_id names one commit: set it on a Connection "
                                    "(conn.execution_options(request_id=...)), not on the Engine")
        super().set_engine_execution_options(engine, opts)

    # ---------------------------------------------------------- connecting

    def create_connect_args(self, url):
        if url.database:
            raise exc.ArgumentError(
                f"sqlgate URL names a database ({url.database!r}): the gateway serves one "
                "database, write sqlgate://host:port/?token=...")
        if not url.host:
            raise exc.ArgumentError("sqlgate URL needs the gateway's host:port")
        target = f"{url.host}:{url.port or 50051}"
        query = dict(url.query)
        opts = {}
        token = query.pop("token", None) or url.password
        if token:
            opts["token"] = token
        tls = query.pop("tls", None)
        if tls is not None:
            lowered = tls.lower()
            if lowered in ("true", "1", "yes", "on"):
                opts["tls"] = True
            elif lowered in ("false", "0", "no", "off", ""):
                opts["tls"] = None
            else:
                opts["tls"] = tls  # path of a CA certificate
        timeout = query.pop("timeout", None)
        if timeout is not None:
            opts["timeout"] = float(timeout)
        if query:
            raise exc.ArgumentError(
                "unknown sqlgate URL option(s): " + ", ".join(sorted(query))
                + " (known: token, tls, timeout)")
        return [target], opts

    def on_connect(self):
        return None  # MySQL drivers run SET NAMES here: the gateway speaks utf8mb4

    def _detect_charset(self, connection):
        return "utf8mb4"  # the gateway's connections are utf8mb4; strings arrive as str

    def _extract_error_code(self, exception):
        return getattr(exception, "errno", None)

    def is_disconnect(self, e, connection, cursor):
        dbapi = self.dbapi
        if not isinstance(e, dbapi.Error):
            return False
        if e.code == grpc.StatusCode.UNAVAILABLE and e.reason != "TRANSACTION_OWNER_UNAVAILABLE":
            return True
        # the driver's own "the connection is closed"
        return isinstance(e, dbapi.InterfaceError) and e.code is None and "connection is closed" in str(e)

    def do_ping(self, dbapi_connection):
        # An autocommit SELECT 1 that leaves transactions alone (a cursor's
        # SELECT 1 would begin one).
        dbapi_connection.ping()
        return True

    # -------------------------------------------------------- transactions

    def get_isolation_level_values(self, dbapi_connection):
        return _ISOLATION_LEVELS + ("AUTOCOMMIT",)

    def set_isolation_level(self, dbapi_connection, level):
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True
        else:
            dbapi_connection.autocommit = False
            dbapi_connection.isolation_level = level

    def get_isolation_level(self, dbapi_connection):
        if dbapi_connection.autocommit:
            return "AUTOCOMMIT"
        if dbapi_connection.isolation_level:
            return dbapi_connection.isolation_level
        return self._server_isolation_level(dbapi_connection)

    def _server_isolation_level(self, dbapi_connection):
        """The server's default, read with an autocommit ping-like call."""
        variable = "@@transaction_isolation" if self._is_mysql and (
            self.server_version_info or (0,)) >= (5, 7, 20) else "@@tx_isolation"
        (value,) = dbapi_connection.autocommit_row(f"SELECT {variable}")
        if isinstance(value, bytes):
            value = value.decode()
        return value.upper().replace("-", " ")

    def detect_autocommit_setting(self, dbapi_connection):
        return dbapi_connection.autocommit

    def do_savepoint(self, connection, name):
        raise NotImplementedError(
            "sqlgate refuses SAVEPOINT: nested transactions (begin_nested) are not supported; "
            "roll back the whole transaction and run it again instead")

    def do_rollback_to_savepoint(self, connection, name):
        self.do_savepoint(connection, name)

    def do_release_savepoint(self, connection, name):
        self.do_savepoint(connection, name)

    def do_begin_twophase(self, connection, xid):
        raise NotImplementedError("sqlgate refuses XA: two-phase transactions are not supported")

    do_prepare_twophase = do_commit_twophase = do_rollback_twophase = do_begin_twophase

    def do_recover_twophase(self, connection):
        raise NotImplementedError("sqlgate refuses XA: two-phase transactions are not supported")

    # ------------------------------------------------------------ executing

    def _run(self, cursor, run):
        try:
            run()
        except self.dbapi.ProgrammingError as error:
            conn = cursor.connection
            if (self.implicit_commit_ddl and error.reason == "IMPLICIT_COMMIT_IN_TRANSACTION"
                    and conn.transaction_id):
                if conn.request_id:
                    # The implicit commit would spend the id on the work
                    # before the DDL, and the work after it would commit
                    # with none: a retry with the same id would run that
                    # part twice. Refuse instead (the refusal ran nothing;
                    # the transaction stays open).
                    raise self.dbapi.ProgrammingError(
                        "DDL inside a transaction whose commit has a request_id: the implicit "
                        "commit before the DDL would spend the id on the work before it and leave "
                        "the work after it unprotected, so a retry could run that part twice; run "
                        "the DDL in its own transaction or in AUTOCOMMIT, before or after") from error
                # What MySQL does before DDL: commit the open transaction.
                # The refusal ran nothing; without a transaction open the
                # driver runs the statement on its own.
                conn.commit()
                run()
            else:
                raise

    @staticmethod
    def _request_id(cursor, context):
        """{"request_id": ...} for a statement run in autocommit mode with the
        execution option request_id (the driver takes one only there; in a
        transaction the option names the commit, see RequestIdCharacteristic)."""
        request_id = context.execution_options.get("request_id") if context is not None else None
        return {"request_id": request_id} if request_id and cursor.connection.autocommit else {}

    def do_execute(self, cursor, statement, parameters, context=None):
        kw = self._request_id(cursor, context)
        self._run(cursor, lambda: cursor.execute(statement, parameters, **kw))
        if context is not None and context.execute_style is ExecuteStyle.INSERTMANYVALUES:
            context._imv_rowcount = (context._imv_rowcount or 0) + max(cursor.rowcount, 0)

    def do_execute_no_params(self, cursor, statement, context=None):
        kw = self._request_id(cursor, context)
        self._run(cursor, lambda: cursor.execute(statement, **kw))

    def do_executemany(self, cursor, statement, parameters, context=None):
        rowcount = cursor.executemany(statement, parameters, **self._request_id(cursor, context))
        if context is not None:
            context._rowcount = rowcount


dialect = SqlgateDialect

# For use without the installed entry points (a source tree on sys.path).
registry.register("sqlgate", "sqlgate_client.sqlalchemy_dialect", "SqlgateDialect")
registry.register("mysql.sqlgate", "sqlgate_client.sqlalchemy_dialect", "SqlgateDialect")
# The asyncio dialect (create_async_engine("sqlgate+aio://host:port")).
registry.register("sqlgate.aio", "sqlgate_client.sqlalchemy_aio", "SqlgateAsyncDialect")
registry.register("mysql.sqlgate_aio", "sqlgate_client.sqlalchemy_aio", "SqlgateAsyncDialect")

"""A DB-API 2.0 (PEP 249) driver for sqlgate.

    from sqlgate_client import dbapi
    with dbapi.connect("localhost:50051") as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO t (a) VALUES (?)", [1])
        conn.commit()

How DB-API maps onto the gateway's RPCs (see README.md):

- autocommit=False (the default): the first statement after connect, commit
  or rollback begins a transaction inline (ExecuteRequest.begin, no Begin
  call); its transaction_id is used by every later statement until commit()
  (Commit) or rollback() (Rollback). Both are no-ops when no transaction is
  open. close() rolls an open transaction back.
- autocommit=True: every statement is a plain autocommit Execute.
- executemany: ExecuteBatch, inside the open transaction (beginning one with
  an inline begin on the first statement if needed) or, in autocommit mode,
  as its own batch that commits.
- SSCursor reads with ExecuteStream, a batch of rows at a time, as rows are
  fetched.
- request ids (extensions, README "Request ids"): commit(request_id=...) or
  Connection.request_id name the commit of the open transaction;
  execute(..., request_id=...) and executemany(..., request_id=...) in
  autocommit mode name that write. A rerun with the same id is answered
  from the gateway's record, not run again: Connection.replayed /
  Cursor.replayed say so.
"""
import datetime
import os
import re
import time

import grpc

# Importing this module imports the package first, whose __init__ puts the
# generated stubs (package `sqlgate.v1`) on sys.path.
from sqlgate.v1 import sqlgate_pb2 as pb  # noqa: E402
from sqlgate.v1 import sqlgate_pb2_grpc as pb_grpc  # noqa: E402

from .errors import ends_transaction as _ends_transaction  # noqa: E402
from .errors import from_rpc_error  # noqa: E402
from .values import add_values, from_value  # noqa: E402

apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "qmark"

# Statements and bytes per ExecuteBatch call: below the gateway's defaults
# (--max-batch-statements 1000, --max-request-bytes 4MiB). Connection
# attributes of the same names override them.
MAX_BATCH_STATEMENTS = 1000
MAX_BATCH_BYTES = 1 << 20


# ----------------------------------------------------------------- exceptions

class Warning(Exception):  # noqa: A001 (the PEP's name)
    """Important warnings (not raised by this driver; part of the API)."""


class Error(Exception):
    """Base of every error this driver raises.

    code: the grpc.StatusCode (None for errors raised by the driver itself);
    reason: the ErrorInfo reason (e.g. "MYSQL_ERROR", "TRANSACTION_EXPIRED");
    errno, sqlstate: the database's error number and SQLSTATE, when it was a
    database error; statement_index: the failing statement of executemany;
    message: the status message."""

    def __init__(self, message, *, code=None, reason=None, errno=None, sqlstate=None,
                 statement_index=None, metadata=None):
        super().__init__(f"{code.name}: {message}" if code is not None else message)
        self.message = message
        self.code = code
        self.reason = reason
        self.errno = errno
        self.sqlstate = sqlstate
        self.statement_index = statement_index
        self.metadata = dict(metadata or {})


class InterfaceError(Error):
    """Misuse of the driver (closed cursor or connection, ...)."""


class DatabaseError(Error):
    """Errors related to the database."""


class DataError(DatabaseError):
    """Bad data: a malformed value, out of range, too long, NULL into NOT NULL..."""


class OperationalError(DatabaseError):
    """The database's operation failed, not necessarily the program's fault:
    deadlock, expired transaction, unavailable, overloaded, deadline..."""


class IntegrityError(DatabaseError):
    """Relational integrity: duplicate key, foreign key, NOT NULL."""


class InternalError(DatabaseError):
    """The gateway or its driver failed internally."""


class ProgrammingError(DatabaseError):
    """Syntax error, unknown table or column, refused statement, wrong number
    of parameters, statement not allowed..."""


class NotSupportedError(DatabaseError):
    """A method or feature the gateway does not support."""


_C = grpc.StatusCode

# A Commit that failed with one of these may never have reached the gateway
# instance that owns the transaction (the instance it went through died, or
# the call was cut on the way): the owner then keeps the transaction open,
# holding its locks, until --tx-idle-timeout. commit() rolls it back by id
# (through whichever instance answers: it forwards); a COMMIT that did reach
# the owner runs to its end, and the rollback then changes nothing.
_UNANSWERED_COMMIT = (_C.UNAVAILABLE, _C.DEADLINE_EXCEEDED, _C.CANCELLED, _C.UNKNOWN)

# MySQL/MariaDB error numbers that decide the class whatever the gRPC code.
_INTEGRITY_ERRNOS = {
    1022,  # ER_DUP_KEY
    1048,  # ER_BAD_NULL_ERROR
    1062,  # ER_DUP_ENTRY
    1169,  # ER_DUP_UNIQUE
    1216, 1217,  # ER_NO_REFERENCED_ROW, ER_ROW_IS_REFERENCED
    1451, 1452,  # ER_ROW_IS_REFERENCED_2, ER_NO_REFERENCED_ROW_2
    1557,  # ER_FOREIGN_DUPLICATE_KEY
    1586,  # ER_DUP_ENTRY_WITH_KEY_NAME
    1761, 1762,  # foreign duplicate key variants
    3819,  # MySQL: check constraint violated
    4025,  # MariaDB: CONSTRAINT ... failed
}
_DATA_ERRNOS = {
    1264,  # out of range
    1265,  # data truncated
    1292,  # incorrect datetime/... value
    1364,  # field has no default
    1365,  # division by 0
    1366,  # incorrect integer/string value
    1367,  # illegal value
    1406,  # data too long
    1411,  # incorrect value for function
    1441,  # datetime function overflow
}
_PROGRAMMING_ERRNOS = {
    1049,  # unknown database
    1050,  # table already exists (ALREADY_EXISTS, but not an integrity problem)
    1054,  # unknown column
    1064,  # syntax error
    1146,  # no such table
    1149,  # syntax error
}
# Connection.isolation_level values -> TransactionOptions.isolation.
_ISOLATION_LEVELS = {
    None: pb.ISOLATION_LEVEL_DEFAULT,
    "READ UNCOMMITTED": pb.ISOLATION_LEVEL_READ_UNCOMMITTED,
    "READ COMMITTED": pb.ISOLATION_LEVEL_READ_COMMITTED,
    "REPEATABLE READ": pb.ISOLATION_LEVEL_REPEATABLE_READ,
    "SERIALIZABLE": pb.ISOLATION_LEVEL_SERIALIZABLE,
}
# Statements whose result a plain Cursor may read again through ExecuteStream
# when Execute refuses it as too large (RESULT_TOO_LARGE): reads, which the
# refusal (the gateway kills the statement) leaves without effect.
_READ_KEYWORDS = {"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "("}
# Statements a plain Cursor runs through ExecuteStream from the start: they
# change data and return rows, so they must not run twice.
_RETURNING = re.compile(r"\bRETURNING\b|^\s*CALL\b", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|/\*(?![!M]).*?\*/|(?:--[ \t\x0b\x0c]|#)[^\n]*(?:\n|\Z))*",
                               re.DOTALL)


def _error_class(code, reason, errno, sqlstate):
    if errno in _INTEGRITY_ERRNOS:
        return IntegrityError
    if code in (_C.ABORTED, _C.UNAVAILABLE, _C.DEADLINE_EXCEEDED, _C.RESOURCE_EXHAUSTED,
                _C.UNKNOWN, _C.CANCELLED, _C.UNAUTHENTICATED):
        return OperationalError
    if code == _C.INTERNAL:
        return InternalError
    if code == _C.UNIMPLEMENTED:
        return NotSupportedError
    if errno in _DATA_ERRNOS or reason == "INVALID_VALUE" or (sqlstate or "").startswith("22"):
        return DataError
    if errno in _PROGRAMMING_ERRNOS:
        return ProgrammingError
    if code == _C.ALREADY_EXISTS:
        return IntegrityError
    if code == _C.INVALID_ARGUMENT:
        return InterfaceError if reason == "MALFORMED_REQUEST" else ProgrammingError
    if code in (_C.NOT_FOUND, _C.PERMISSION_DENIED, _C.OUT_OF_RANGE):
        return ProgrammingError
    if code == _C.FAILED_PRECONDITION:
        if reason in ("IMPLICIT_COMMIT_IN_TRANSACTION", "REQUEST_ID_REUSED") or errno == 1792:
            # 1792: a write in a READ ONLY transaction. REQUEST_ID_REUSED: the
            # id names other work; nothing ran, and rerunning cannot help.
            return ProgrammingError
        return OperationalError  # TRANSACTION_ENDED_BY_STATEMENT and other server errors
    return DatabaseError


def _translate(rpc_error):
    """A grpc.RpcError as the DB-API exception it maps to."""
    error = from_rpc_error(rpc_error)
    kind = _error_class(error.code, error.reason, error.errno, error.sqlstate)
    mapped = kind(error.message, code=error.code, reason=error.reason, errno=error.errno,
                  sqlstate=error.sqlstate, statement_index=error.statement_index,
                  metadata=error.metadata)
    mapped.__cause__ = None
    return mapped


def _is_read(sql):
    """Whether sql is a read (SELECT, WITH, SHOW...), after leading comments."""
    rest = sql[_LEADING_COMMENTS.match(sql).end():]
    if rest.startswith("("):
        return True
    word = re.match(r"[A-Za-z]+", rest)
    return bool(word) and word.group(0).upper() in _READ_KEYWORDS


# ----------------------------------------------------- types and constructors

class DBAPITypeObject:
    """Compares equal to each MySQL type name (Column.type, description[i][1]) it groups."""

    def __init__(self, name, *type_names):
        self.name = name
        self.values = frozenset(type_names)

    def __eq__(self, other):
        if isinstance(other, DBAPITypeObject):
            return self is other
        return other in self.values

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"<DBAPITypeObject {self.name}>"


STRING = DBAPITypeObject("STRING", "CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT",
                         "ENUM", "SET", "JSON")
BINARY = DBAPITypeObject("BINARY", "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB",
                         "LONGBLOB", "BIT", "GEOMETRY", "VECTOR")
NUMBER = DBAPITypeObject("NUMBER", "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "FLOAT",
                         "DOUBLE", "DECIMAL", "YEAR")
DATETIME = DBAPITypeObject("DATETIME", "DATE", "DATETIME", "TIMESTAMP", "TIME")
ROWID = DBAPITypeObject("ROWID")  # MySQL has no ROWID type

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes


def DateFromTicks(ticks):
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks):
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks):
    return Timestamp(*time.localtime(ticks)[:6])


def _describe(column):
    """A PEP 249 7-tuple from a proto Column."""
    precision = scale = None
    if column.type == "DECIMAL":
        scale = column.decimals
        # The display length counts the sign (signed columns) and the point.
        precision = column.length - (0 if column.unsigned else 1) - (1 if column.decimals else 0)
    elif column.type in ("DATETIME", "TIMESTAMP", "TIME"):
        scale = column.decimals  # fractional-second digits
    return (column.name, column.type, None, column.length, precision, scale, column.nullable)


def _check_params(params):
    if isinstance(params, (str, bytes, bytearray)) or isinstance(params, dict):
        raise ProgrammingError("parameters must be a sequence (paramstyle is qmark: `?`)")


def _add_params(repeated, params):
    """Appends params, converted, to a request's repeated Value field (in place: see add_values)."""
    if params is None:
        return
    _check_params(params)
    try:
        add_values(repeated, params)
    except TypeError as error:
        raise ProgrammingError(str(error)) from None


def _row(message_row):
    return tuple([from_value(v) for v in message_row.values])


# ------------------------------------------------------------------ connection

def connect(target, token=None, tls=None, timeout=None, autocommit=False, isolation_level=None,
            read_only=False):
    """Opens a connection to a sqlgate gateway at target ("host:port").

    token: sent as `authorization: Bearer <token>` on every call.
    tls: None/False plaintext; True TLS with the system roots; a str: path of
    a CA certificate (PEM) to verify the gateway with.
    timeout: deadline of every call in seconds (for SSCursor, of the whole
    stream). autocommit: see Connection.autocommit. isolation_level,
    read_only: options of the transactions the connection begins (see
    Connection.isolation_level and Connection.read_only).

    The channel connects lazily: an unreachable gateway shows up as
    OperationalError (UNAVAILABLE) at the first statement."""
    return Connection(target, token=token, tls=tls, timeout=timeout, autocommit=autocommit,
                      isolation_level=isolation_level, read_only=read_only)


class Connection:
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
                 read_only=False, *, channel=None):
        if channel is None:
            if tls is None or tls is False:
                channel = grpc.insecure_channel(target)
            elif tls is True:
                channel = grpc.secure_channel(target, grpc.ssl_channel_credentials())
            elif isinstance(tls, (str, os.PathLike)):
                with open(tls, "rb") as f:
                    roots = f.read()
                channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots))
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
        # The error that ended the open transaction on the gateway: every
        # later call raises until rollback() (see _check_transaction).
        self._ended_by = None
        self._streaming = None  # an SSCursor whose stream is still open inside the transaction
        self._closed = False
        self.max_batch_statements = MAX_BATCH_STATEMENTS
        self.max_batch_bytes = MAX_BATCH_BYTES
        # Extension (request ids): the id the next commit() carries when it
        # is given none; cleared by every commit() and rollback(). replayed:
        # whether the last commit() was answered from the gateway's record.
        self.request_id = None
        self.replayed = False

    # -- public API

    @property
    def autocommit(self):
        """False (default): statements run in a transaction ended by commit() or
        rollback(). True: each statement commits on its own. Turning it on
        with a transaction open commits that transaction (as MySQL's SET
        autocommit=1 does)."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value):
        value = bool(value)
        if value and not self._autocommit:
            self.commit()
        self._autocommit = value

    @property
    def isolation_level(self):
        """The isolation level of the transactions this connection begins:
        None (the server's default), "READ UNCOMMITTED", "READ COMMITTED",
        "REPEATABLE READ" or "SERIALIZABLE" (TransactionOptions.isolation of
        the inline begin). A change applies from the next transaction on, as
        MySQL's SET SESSION TRANSACTION ISOLATION LEVEL does; autocommit
        statements keep the server's default."""
        for name, value in _ISOLATION_LEVELS.items():
            if value == self._isolation and value != pb.ISOLATION_LEVEL_DEFAULT:
                return name
        return None

    @isolation_level.setter
    def isolation_level(self, level):
        key = None if level is None else str(level).upper().replace("-", " ").replace("_", " ")
        if key not in _ISOLATION_LEVELS:
            raise ProgrammingError(f"unknown isolation level {level!r}: use one of "
                                   + ", ".join(repr(k) for k in _ISOLATION_LEVELS))
        self._isolation = _ISOLATION_LEVELS[key]

    # read_only (a plain attribute): the transactions this connection begins
    # are READ ONLY (TransactionOptions.read_only); from the next one on.

    def ping(self):
        """Checks that the gateway and its database answer: a plain autocommit
        `SELECT 1` that leaves the open transaction, if any, untouched.
        Raises OperationalError (e.g. UNAVAILABLE) when they do not."""
        self._check_open()
        self._unary("Execute", pb.ExecuteRequest(sql="SELECT 1"))
        return True

    def autocommit_row(self, sql):
        """The first row of `sql` run as an autocommit call that leaves the
        open transaction, if any, alone (or None without rows)."""
        self._check_open()
        response = self._unary("Execute", pb.ExecuteRequest(sql=sql))
        return _row(response.rows[0]) if response.rows else None

    def _begin_options(self):
        return pb.TransactionOptions(isolation=self._isolation, read_only=self.read_only)

    @property
    def transaction_id(self):
        """The gateway's id of the open transaction, or None."""
        return self._transaction_id

    @property
    def transaction_ended_by(self):
        """The error that ended the connection's transaction on the gateway
        (deadlock, expiry, lost connection...), until rollback(); else None.
        While it is set, every statement and commit() raise."""
        return self._ended_by

    @property
    def closed(self):
        return self._closed

    def cursor(self, cursorclass=None):
        self._check_open()
        return (cursorclass or Cursor)(self)

    def commit(self, request_id=None):
        """Commits the open transaction (Commit); a no-op when none is open.
        Whatever Commit answers, the transaction is over afterwards: on
        OperationalError with code UNKNOWN (COMMIT_OUTCOME_UNKNOWN), check
        whether the work is there before redoing it, or rerun the whole
        transaction and commit it with the same request id. After a Commit
        that got no answer (UNAVAILABLE, a deadline, a cancel, UNKNOWN) the
        transaction is also rolled back by id, quietly: the Commit may never
        have reached the gateway instance that owns it, which would keep it
        open, holding its locks, until its idle timeout.

        request_id (an extension; default: Connection.request_id, which every
        commit() clears): the gateway records the commit under this id in the
        same database transaction. When the id is recorded already (an
        earlier attempt committed), this transaction is rolled back and the
        recorded commit is answered: Connection.replayed is then True. The
        id names one transaction's commit: use a new one for other work."""
        self._check_open()
        self._finish_stream()
        self._check_transaction()
        request_id, self.request_id, self.replayed = request_id or self.request_id, None, False
        transaction_id = self._transaction_id
        if not transaction_id:
            return
        self._transaction_id = None
        try:
            response = self._unary("Commit", pb.CommitRequest(transaction_id=transaction_id,
                                                              request_id=request_id or ""))
        except Error as error:
            if error.code in _UNANSWERED_COMMIT:
                self._quiet_rollback(transaction_id)  # see _UNANSWERED_COMMIT
            raise
        self.replayed = response.replayed

    def rollback(self):
        """Rolls the open transaction back (Rollback); a no-op when none is open."""
        self._check_open()
        self._finish_stream(cancel=True)
        self._ended_by = None  # the transaction is gone already: nothing to roll back
        self.request_id = None
        transaction_id = self._transaction_id
        if not transaction_id:
            return
        self._transaction_id = None
        self._unary("Rollback", pb.RollbackRequest(transaction_id=transaction_id))

    def close(self):
        """Rolls back an open transaction and closes the channel. Idempotent."""
        if self._closed:
            return
        try:
            if self._transaction_id:
                self.rollback()
        except Error:
            pass  # the gateway rolls it back anyway when the channel goes
        finally:
            self._closed = True
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        """Commits on success, rolls back on an exception, then closes."""
        try:
            if not self._closed:
                if kind is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.close()
        return False

    # -- calls

    def _check_open(self):
        if self._closed:
            raise InterfaceError("the connection is closed")

    def _unary(self, method, request):
        try:
            return getattr(self._stub, method)(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as rpc_error:
            raise _translate(rpc_error) from None

    def _failed(self, error, transaction_id):
        """Bookkeeping after a call in transaction_id failed with error: when
        the error ended the transaction, the connection raises on every later
        call until rollback(), instead of beginning a new transaction that
        commit() would commit without the work before the error."""
        if transaction_id and transaction_id == self._transaction_id and _ends_transaction(error):
            self._transaction_id = None
            self._ended_by = error
            if error.code in (_C.DEADLINE_EXCEEDED, _C.CANCELLED, _C.UNAVAILABLE, _C.UNKNOWN):
                self._quiet_rollback(transaction_id)  # in case the gateway has not noticed yet

    def _check_transaction(self):
        """Raises while the transaction is ended by an earlier error."""
        ended = self._ended_by
        if ended is not None:
            raise type(ended)(
                "the transaction was ended by an earlier error and nothing more can run in it; "
                f"call rollback() and run the whole transaction again (earlier error: {ended.message})",
                code=ended.code, reason=ended.reason, errno=ended.errno, sqlstate=ended.sqlstate,
                metadata=ended.metadata)

    def _quiet_rollback(self, transaction_id):
        try:
            self._stub.Rollback(pb.RollbackRequest(transaction_id=transaction_id),
                                metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError:
            pass

    def _finish_stream(self, discard=True, cancel=False):
        """Ends an SSCursor's stream still open in the transaction: the gateway
        runs the calls of one transaction one after another, so nothing else can
        run in it until the stream is over."""
        cursor, self._streaming = self._streaming, None
        if cursor is not None:
            cursor._end_stream(cancel=cancel, discarded=discard)

    def _request(self, sql, params, request_id=None):
        """An ExecuteRequest in the current transaction mode; returns (request, began)."""
        self._check_transaction()
        self._check_request_id(request_id)
        request = pb.ExecuteRequest(sql=sql, request_id=request_id or "")
        _add_params(request.params, params)
        began = False
        if not self._autocommit:
            if self._transaction_id:
                request.transaction_id = self._transaction_id
            else:
                request.begin.SetInParent()  # inline begin
                request.begin.MergeFrom(self._begin_options())
                began = True
        return request, began

    def _check_request_id(self, request_id):
        """A statement's request id names an autocommit write only."""
        if request_id and not self._autocommit:
            raise ProgrammingError("a request_id on execute()/executemany() needs autocommit: in a "
                                   "transaction, give it to commit(request_id=...) or set "
                                   "Connection.request_id")

    def _execute(self, sql, params, request_id=None):
        self._check_open()
        self._finish_stream()
        request, began = self._request(sql, params, request_id)
        try:
            response = self._unary("Execute", request)
        except Error as error:
            if began and error.reason == "IMPLICIT_COMMIT_IN_TRANSACTION":
                # DDL and the like commit implicitly: with no transaction open
                # there is nothing to commit, so run it on its own (the refusal
                # ran nothing), as MySQL would.
                return self._unary("Execute", pb.ExecuteRequest(sql=sql, params=request.params))
            self._failed(error, request.transaction_id)
            raise
        if began and response.transaction_id:
            self._transaction_id = response.transaction_id
        return response

    def _open_stream(self, sql, params):
        """Starts an ExecuteStream; returns (call, header)."""
        self._check_open()
        self._finish_stream()
        request, began = self._request(sql, params)
        call = self._stub.ExecuteStream(request, metadata=self._metadata, timeout=self._timeout)
        try:
            first = next(call)
        except grpc.RpcError as rpc_error:
            error = _translate(rpc_error)
            if began and error.reason == "IMPLICIT_COMMIT_IN_TRANSACTION":
                call = self._stub.ExecuteStream(pb.ExecuteRequest(sql=sql, params=request.params),
                                                metadata=self._metadata, timeout=self._timeout)
                try:
                    first = next(call)
                except grpc.RpcError as rpc_error2:
                    raise _translate(rpc_error2) from None
                return call, first.header, None
            self._failed(error, request.transaction_id)
            raise error from None
        header = first.header
        if began and header.transaction_id:
            self._transaction_id = header.transaction_id
        return call, header, (None if self._autocommit else self._transaction_id)

    def _read_stream(self, sql, params):
        """Runs a statement through ExecuteStream and reads all of it (a plain
        Cursor's result that is too large for Execute); returns
        (columns, rows, rows_affected, last_insert_id)."""
        call, header, transaction_id = self._open_stream(sql, params)
        rows, summary = [], None
        try:
            for message in call:
                part = message.WhichOneof("part")
                if part == "rows":
                    rows.extend(_row(r) for r in message.rows.rows)
                elif part == "summary":
                    summary = message.summary
        except grpc.RpcError as rpc_error:
            error = _translate(rpc_error)
            if transaction_id is not None:
                self._failed(error, transaction_id)
            raise error from None
        if summary is None:
            return header.columns, rows, 0, 0
        return header.columns, rows, summary.rows_affected, summary.last_insert_id

    def _execute_batch(self, statements, request_id=None, batch=None):
        """Runs statements (pb.Statement) with ExecuteBatch; returns (their
        results, replayed). With a request_id (autocommit only), a batch that
        needs several calls carries it on its Commit: a replay then has no
        results (the rerun's were rolled back). `batch`: an
        ExecuteBatchRequest with combine_inserts whose statements are
        `statements`, sent as it is when one call does (no copy)."""
        self._check_open()
        self._finish_stream()
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
            response = self._unary("ExecuteBatch", request)
            return list(response.results), response.replayed
        results, transaction_id, began = [], self._transaction_id, False
        if not transaction_id:
            # Begin inline with the first statement, then batch the rest in it.
            first = statements[0]
            try:
                response = self._unary("Execute", pb.ExecuteRequest(
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
                    results.extend(self._unary("ExecuteBatch", request).results)
                except Error as error:
                    error.statement_index = done + (error.statement_index or 0)
                    raise
                done += len(chunk)
            if self._autocommit:
                committed = self._unary("Commit", pb.CommitRequest(transaction_id=transaction_id,
                                                                   request_id=request_id or ""))
                if committed.replayed:
                    return [], True
        except Error as error:
            if began:
                # The transaction holds nothing but this call's work: drop it
                # all, so that executemany either did everything or nothing.
                if self._transaction_id == transaction_id:
                    self._transaction_id = None
                if not _ends_transaction(error) or error.code in (_C.DEADLINE_EXCEEDED, _C.CANCELLED,
                                                                  _C.UNAVAILABLE, _C.UNKNOWN):
                    self._quiet_rollback(transaction_id)
            else:
                self._failed(error, transaction_id)
            raise
        return results, False

    def _fits_one_batch(self, statements):
        return (len(statements) <= self.max_batch_statements
                and sum(s.ByteSize() for s in statements) <= self.max_batch_bytes)

    def _chunks(self, statements):
        chunk, size = [], 0
        for statement in statements:
            n = statement.ByteSize()
            if chunk and (len(chunk) >= self.max_batch_statements or size + n > self.max_batch_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(statement)
            size += n
        if chunk:
            yield chunk



def _no_stream_request_id(request_id):
    """Statements read through ExecuteStream (RETURNING, CALL) take no request id."""
    if request_id:
        raise NotSupportedError("a request_id cannot name a statement that returns rows from a write "
                                "(RETURNING, CALL): the gateway streams those and records no outcome")


def _first_id(results):
    """executemany's lastrowid: the first non-zero last_insert_id (that of the
    first multi-row INSERT the gateway sent), or None."""
    return next((r.last_insert_id for r in results if r.last_insert_id), None)

# --------------------------------------------------------------------- cursors

class Cursor:
    """A buffered cursor, as PyMySQL's Cursor: execute() reads the whole
    result into client memory, whatever its size. A statement is one Execute
    call; when the gateway refuses its result as too large for a unary answer
    (RESULT_TOO_LARGE: --max-result-rows 10,000, --max-result-bytes 4 MiB by
    default; the gateway kills the statement), a read (SELECT, WITH, SHOW...)
    is run again through ExecuteStream and buffered here. Statements that
    change data and return rows (RETURNING, CALL) go through ExecuteStream
    from the start, so that they never run twice. SSCursor reads a batch at
    a time instead of buffering."""

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

    # -- execution

    def execute(self, sql, params=None, *, request_id=None):
        """Runs one statement with `?` parameters; returns rowcount.

        request_id (an extension, autocommit mode only): the gateway records
        the write under this id; a rerun with the same id runs nothing and
        answers the recorded rowcount and lastrowid with `replayed` True."""
        self._check_open()
        self._reset()
        conn = self.connection
        if _RETURNING.search(sql):
            _no_stream_request_id(request_id)
            self._set_result(*conn._read_stream(sql, params))
            return self.rowcount
        try:
            response = conn._execute(sql, params, request_id)
        except OperationalError as error:
            if error.reason != "RESULT_TOO_LARGE" or not _is_read(sql):
                raise
            self._set_result(*conn._read_stream(sql, params))
            return self.rowcount
        self._set_result(response.columns, [_row(r) for r in response.rows],
                         response.rows_affected, response.last_insert_id)
        self.replayed = response.replayed
        return self.rowcount

    def executemany(self, sql, seq_of_params, *, request_id=None):
        """Runs the statement once per parameter sequence, in one ExecuteBatch
        (in chunks of Connection.max_batch_statements) that lets the gateway
        send a plain INSERT ... VALUES (...) as multi-row INSERTs
        (combine_inserts), as PyMySQL's executemany does; returns rowcount, the
        sum of the rows affected; lastrowid is the first AUTO_INCREMENT id
        generated (PyMySQL's, when its rows fit one multi-row INSERT). Either every statement ran or none did,
        except inside an already open transaction with more than one chunk,
        where a failure undoes only the failing chunk (roll back to undo all).
        request_id: as for execute() (autocommit mode only); a replay of a
        batch that needed several calls has rowcount -1."""
        self._check_open()
        self._reset()
        batch = pb.ExecuteBatchRequest(combine_inserts=True)
        add = batch.statements.add
        for p in seq_of_params:
            _add_params(add(sql=sql).params, p)
        self._set_batch_result(*self.connection._execute_batch(batch.statements, request_id, batch))
        return self.rowcount

    def _set_batch_result(self, results, replayed):
        self.replayed = replayed
        self.rowcount = sum(r.rows_affected for r in results) if results or not replayed else -1
        self.lastrowid = _first_id(results)

    def _set_result(self, columns, rows, rows_affected, last_insert_id):
        if columns:
            self.description = tuple(_describe(c) for c in columns)
            self._rows = rows
            self.rowcount = len(rows)
            self.rownumber = 0
        else:
            self.rowcount = rows_affected
        self.lastrowid = last_insert_id or None

    def _reset(self):
        self.description = None
        self.rowcount = -1
        self.lastrowid = None
        self.rownumber = None
        self.replayed = False
        self._rows = []

    # -- fetching

    def _check_open(self):
        if self._closed:
            raise InterfaceError("the cursor is closed")
        self.connection._check_open()

    def _check_result(self):
        self._check_open()
        if self.description is None:
            raise ProgrammingError("no result set: the last statement returned no rows, or none ran")

    def fetchone(self):
        self._check_result()
        if self.rownumber >= len(self._rows):
            return None
        row = self._rows[self.rownumber]
        self.rownumber += 1
        return row

    def fetchmany(self, size=None):
        self._check_result()
        size = self.arraysize if size is None else size
        rows = self._rows[self.rownumber:self.rownumber + size]
        self.rownumber += len(rows)
        return rows

    def fetchall(self):
        self._check_result()
        rows = self._rows[self.rownumber:]
        self.rownumber = len(self._rows)
        return rows

    def __iter__(self):
        return self

    def __next__(self):
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    # -- the rest of the PEP

    def setinputsizes(self, sizes):
        pass

    def setoutputsize(self, size, column=None):
        pass

    def nextset(self):
        """Statements return one result set: there is never a next one."""
        self._check_open()
        return None

    def close(self):
        self._closed = True
        self._rows = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class SSCursor(Cursor):
    """An unbuffered ("server-side") cursor: execute() starts an ExecuteStream
    and reads its header; rows are read from the stream only as they are
    fetched, one batch (about 64 KiB) at a time, so results of any size take
    little memory. rowcount is -1 until the last row has been fetched.

    Read steadily: the gateway ends a stream nobody reads for
    --stream-stall-timeout (30 s), and the connection's timeout, if any,
    bounds the whole stream. Inside a transaction the gateway runs one call
    at a time, so running another statement, commit() or rollback() on the
    connection first ends the stream: the rest of its rows are read and
    discarded (fetching from this cursor then raises ProgrammingError);
    close() reads and discards them too. In autocommit mode the stream is
    simply cancelled instead."""

    def __init__(self, connection):
        super().__init__(connection)
        self._call = None
        self._batch = []
        self._index = 0
        self._fetched = 0
        self._discarded = False
        self._in_transaction = False

    def execute(self, sql, params=None, *, request_id=None):
        self._check_open()
        _no_stream_request_id(request_id)
        # Not cancel: cancelling a stream inside a transaction rolls it back.
        self._end_stream(cancel=False, discarded=False)
        self._reset()
        call, header, transaction_id = self.connection._open_stream(sql, params)
        self._call, self._in_transaction = call, transaction_id is not None
        if header.columns:
            self.description = tuple(_describe(c) for c in header.columns)
            self.rownumber = 0
            if self._in_transaction:
                self.connection._streaming = self
        else:
            self._read_to_end()  # no rows: the summary carries the counts
        return self.rowcount

    def _reset(self):
        super()._reset()
        self._batch, self._index, self._fetched, self._discarded = [], 0, 0, False

    def _next_message(self):
        try:
            return next(self._call)
        except StopIteration:
            return None
        except grpc.RpcError as rpc_error:
            error = _translate(rpc_error)
            self._stream_over()
            if self._in_transaction:
                self.connection._failed(error, self.connection._transaction_id)
            raise error from None

    def _stream_over(self):
        self._call = None
        if self.connection._streaming is self:
            self.connection._streaming = None

    def _fill(self):
        """Reads until a batch with rows or the end; False at the end."""
        while self._call is not None:
            message = self._next_message()
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

    def _read_to_end(self):
        """Reads and drops the rest of the stream; returns how many rows were dropped."""
        dropped = len(self._batch) - self._index
        self._batch = []
        while self._fill():
            dropped += len(self._batch)
            self._batch = []
        return dropped

    def _end_stream(self, cancel, discarded):
        """Ends a stream that is still open (see the class docstring)."""
        if self._call is None:
            return
        dropped = True  # unknown after a cancel
        if cancel or not self._in_transaction:
            self._call.cancel()
            self._stream_over()
        else:
            try:
                dropped = self._read_to_end() > 0
            except Error:
                pass  # bookkept on the connection; the rows are gone anyway
        self._batch = []
        self._discarded = discarded and dropped

    def fetchone(self):
        self._check_result()
        if self._index >= len(self._batch) and not self._fill():
            return None
        row = _row(self._batch[self._index])
        self._index += 1
        self._fetched += 1
        self.rownumber = self._fetched
        return row

    def _check_result(self):
        super()._check_result()
        if self._discarded:
            raise ProgrammingError("the rest of this result was discarded: another call ran in the "
                                   "same transaction before it was fetched")

    def fetchmany(self, size=None):
        size = self.arraysize if size is None else size
        rows = []
        while len(rows) < size:
            row = self.fetchone()
            if row is None:
                break
            rows.append(row)
        if not rows:
            self._check_result()
        return rows

    def fetchall(self):
        rows = []
        while True:
            row = self.fetchone()
            if row is None:
                return rows
            rows.append(row)

    def close(self):
        if not self._closed and not self.connection._closed:
            self._end_stream(cancel=False, discarded=False)
        super().close()
        self._batch = []

"""gRPC errors with sqlgate's ErrorInfo (reason, errno, sqlstate, statement_index)."""
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class SqlgateError(Exception):
    """A failed call: gRPC code, sqlgate reason and metadata."""

    def __init__(self, code, message, reason=None, metadata=None):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})

    @property
    def errno(self):
        value = self.metadata.get("errno")
        return int(value) if value is not None else None

    @property
    def sqlstate(self):
        return self.metadata.get("sqlstate")

    @property
    def statement_index(self):
        value = self.metadata.get("statement_index")
        return int(value) if value is not None else None


class TransactionAborted(SqlgateError):
    """ABORTED: the whole transaction is gone; run it again."""


def from_status(status) -> SqlgateError:
    """The error a google.rpc.Status carries in-band (a Transaction stream's
    statement that failed while its transaction stays open)."""
    reason, metadata = None, {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    kind = TransactionAborted if code == grpc.StatusCode.ABORTED else SqlgateError
    return kind(code, status.message, reason, metadata)


def from_rpc_error(error: grpc.RpcError) -> SqlgateError:
    reason, metadata = None, {}
    status = rpc_status.from_call(error)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
    kind = TransactionAborted if error.code() == grpc.StatusCode.ABORTED else SqlgateError
    return kind(error.code(), error.details(), reason, metadata)


# Reasons under which the transaction the call ran in is over.
_ENDING_REASONS = {"TRANSACTION_ENDED_BY_STATEMENT", "TRANSACTION_NOT_FOUND", "TRANSACTION_EXPIRED",
                   "TRANSACTION_ABORTED", "TRANSACTION_OWNER_UNAVAILABLE"}


def keeps_transaction(error):
    """Whether the gateway said that the transaction stays open after this
    error: ErrorInfo metadata transaction_open "true" (a statement-level
    error such as a lock wait timeout, 1205, or FOR UPDATE NOWAIT: only the
    statement was undone, as MySQL does)."""
    return error.metadata.get("transaction_open") == "true"


def ends_transaction(error):
    """Whether a failed call inside a transaction means the transaction is
    gone, or may be: anything but a statement-level error the gateway
    answered while keeping the transaction. `error` is a SqlgateError or a
    DB-API error (code, reason, metadata)."""
    if keeps_transaction(error):
        return False
    code = error.code
    if code in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
        return True
    if error.reason in _ENDING_REASONS:
        return True
    # A cancelled call or a passed deadline stops the statement and rolls the
    # transaction back (not so for the server's own time limit, MYSQL_ERROR).
    return code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED) and error.reason != "MYSQL_ERROR"


class TransactionEnded(SqlgateError):
    """A call on a transaction that an earlier error already ended: nothing
    more can run in it; roll back and run the whole transaction again."""

    def __init__(self, cause):
        super().__init__(cause.code, "the transaction was ended by an earlier error and nothing more can "
                         f"run in it; run the whole transaction again (earlier error: {cause.message})",
                         cause.reason, cause.metadata)
        self.cause = cause

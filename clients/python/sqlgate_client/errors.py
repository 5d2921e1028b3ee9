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

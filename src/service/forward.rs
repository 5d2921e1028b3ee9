//! Calls for a transaction another instance of the fleet owns, forwarded to
//! it: the client sees exactly what the owner answered.
//!
//! The forwarded request carries the client's metadata (its bearer token:
//! the owner authenticates the caller itself and checks the transaction is
//! theirs), its remaining deadline, and [`FORWARDED_BY`] so that it is
//! never forwarded again. "Could not connect to the owner" (nothing was
//! sent: ABORTED / TRANSACTION_OWNER_UNAVAILABLE) is told apart from "the
//! call broke after it was sent" (for Commit: UNKNOWN /
//! COMMIT_OUTCOME_UNKNOWN) by the cause the channel reports.
use std::{future::Future, net::SocketAddr};

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, transport::Channel};

use super::{ExecuteStreamStream, deadline};
use crate::{
    api::database_client::DatabaseClient,
    auth::{Principal, VOUCHED_PRINCIPAL},
    errors::GatewayError,
    fleet::{FORWARDED_BY, Fleet, Route},
    telemetry::RpcLog,
};

/// Where a call on `transaction_id` is served: `None` here, `Some(owner)`
/// forwarded; an error when the owner left the fleet.
pub(super) fn owner_elsewhere<T>(
    fleet: Option<&Fleet>,
    request: &Request<T>,
    transaction_id: &str,
) -> Result<Option<(Fleet, SocketAddr)>, Status> {
    let Some(fleet) = fleet else {
        return Ok(None);
    };
    if transaction_id.is_empty() {
        return Ok(None);
    }
    let forwarded = request.metadata().contains_key(FORWARDED_BY);
    match fleet.route(transaction_id, forwarded) {
        Route::Local => Ok(None),
        Route::Forward(owner) => Ok(Some((fleet.clone(), owner))),
        Route::OwnerGone(owner) => Err(Status::from(GatewayError::TransactionOwnerUnavailable {
            owner,
            detail: "it left the fleet".into(),
        })),
    }
}

/// What a forwarded call may be: Commit's outcome must not be guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Anything but Commit: a broken call means the owner is unavailable.
    Plain,
    /// Commit: a call that broke after it was sent may have committed.
    Commit,
}

/// Forwards a unary call to `owner` with `call` (the client method).
pub(super) async fn unary<Req, Resp, F, Fut>(
    (fleet, owner): (Fleet, SocketAddr),
    method: &'static str,
    kind: Kind,
    request: Request<Req>,
    transaction_id: &str,
    call: F,
) -> Result<Response<Resp>, Status>
where
    F: FnOnce(DatabaseClient<Channel>, Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let mut log = RpcLog::start(method, transaction_id, request.metadata());
    let client = DatabaseClient::new(fleet.channel(owner));
    let result = call(client, outgoing(&fleet, request, owner, &mut log))
        .await
        .map_err(|status| from_owner(status, owner, kind));
    finish(log, method, &result);
    result
}

/// Forwards an ExecuteStream call to `owner`; its messages are passed on as
/// the client takes them (the owner's backpressure reaches the client).
pub(super) async fn stream<Req>(
    (fleet, owner): (Fleet, SocketAddr),
    request: Request<Req>,
    transaction_id: &str,
    call: impl AsyncFnOnce(
        DatabaseClient<Channel>,
        Request<Req>,
    ) -> Result<
        Response<tonic::Streaming<crate::api::ExecuteStreamResponse>>,
        Status,
    >,
) -> Result<Response<ExecuteStreamStream>, Status> {
    let mut log = RpcLog::start("ExecuteStream", transaction_id, request.metadata());
    let client = DatabaseClient::new(fleet.channel(owner));
    let started = call(client, outgoing(&fleet, request, owner, &mut log))
        .await
        .map_err(|status| from_owner(status, owner, Kind::Plain));
    finish(log, "ExecuteStream", &started);
    let messages = started?.into_inner();
    let passed_on = messages
        .map(move |message| message.map_err(|status| from_owner(status, owner, Kind::Plain)));
    Ok(Response::new(Box::pin(passed_on)))
}

/// The request to send on to `owner`: the client's metadata and message,
/// its remaining deadline, the forwarding mark, and the trace context of
/// this call's span (recorded in `log`).
fn outgoing<T>(
    fleet: &Fleet,
    request: Request<T>,
    owner: SocketAddr,
    log: &mut RpcLog,
) -> Request<T> {
    let timeout = deadline::client_timeout(request.metadata());
    let principal = Principal::of(&request);
    let (metadata, _, message) = request.into_parts();
    let mut outgoing = Request::from_parts(metadata, Default::default(), message);
    // For an owner that names callers by client certificate: this call's
    // principal (believed only from a peer, see `auth::vouched_principal`).
    // A client's own attempt at it never reaches the owner.
    outgoing.metadata_mut().remove_bin(VOUCHED_PRINCIPAL);
    if !principal.is_anonymous() {
        outgoing.metadata_mut().insert_bin(
            VOUCHED_PRINCIPAL,
            tonic::metadata::MetadataValue::from_bytes(principal.name.as_bytes()),
        );
    }
    let me = fleet
        .me()
        .to_string()
        .parse()
        .expect("an address is valid metadata");
    outgoing.metadata_mut().insert(FORWARDED_BY, me);
    log.forwarded(owner, outgoing.metadata_mut());
    if let Some(timeout) = timeout {
        outgoing.set_timeout(timeout);
    }
    outgoing
}

/// The status to answer: the owner's own as is; a failure to connect as
/// "owner unavailable"; a call that broke once sent as "owner unavailable",
/// or for Commit "outcome unknown".
fn from_owner(status: Status, owner: SocketAddr, kind: Kind) -> Status {
    // The owner's statuses come from its trailers; the channel's own
    // failures (refused connection, reset, protocol error) carry their cause.
    if std::error::Error::source(&status).is_none() {
        return status;
    }
    if never_connected(&status) {
        let detail = format!("cannot connect to it: {}", status.message());
        return Status::from(GatewayError::TransactionOwnerUnavailable { owner, detail });
    }
    match kind {
        Kind::Commit => Status::from(GatewayError::CommitOutcomeUnknown(format!(
            "the forwarded Commit to the owning instance {owner} broke after it was sent: {}",
            status.message()
        ))),
        Kind::Plain => Status::from(GatewayError::TransactionOwnerUnavailable {
            owner,
            detail: format!("the call to it broke: {}", status.message()),
        }),
    }
}

/// True when the channel failed to connect, so the call was never sent: a
/// refused or unreachable connection, or a connect timeout
/// (--peer-connect-timeout).
fn never_connected(status: &Status) -> bool {
    use std::io::ErrorKind::*;
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
            )
        {
            return true;
        }
        // hyper-util's connector ("tcp connect error") and tonic's connect
        // timeout name themselves; they come before any byte is sent.
        let text = error.to_string();
        if text.starts_with("tcp connect error") || text.contains("connect timed out") {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Logs and counts a forwarded call's outcome.
fn finish<T>(log: RpcLog, method: &'static str, result: &Result<T, Status>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(status) if is_reason(status, "TRANSACTION_OWNER_UNAVAILABLE") => "unavailable",
        Err(status) if is_reason(status, "COMMIT_OUTCOME_UNKNOWN") => "outcome_unknown",
        Err(_) => "owner_error",
    };
    crate::stats::record_forwarded(method, outcome);
    log.finish(0, result.as_ref().err());
}

/// True when `status` carries ErrorInfo with `reason`.
fn is_reason(status: &Status, reason: &str) -> bool {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .is_some_and(|info| info.reason == reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &Status) -> String {
        use tonic_types::StatusExt;
        status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default()
    }

    fn transport_failure(kind: std::io::ErrorKind) -> Status {
        Status::from_error(Box::new(std::io::Error::new(kind, "socket")))
    }

    #[test]
    fn the_owners_answers_pass_through() {
        let owner = "127.0.0.1:7002".parse().unwrap();
        let answered = Status::already_exists("duplicate");
        let passed = from_owner(answered, owner, Kind::Commit);
        assert_eq!(passed.code(), tonic::Code::AlreadyExists);
        assert_eq!(passed.message(), "duplicate");
    }

    #[test]
    fn a_commit_is_unknown_only_once_it_may_have_been_sent() {
        let owner = "127.0.0.1:7002".parse().unwrap();
        for kind in [Kind::Plain, Kind::Commit] {
            let refused = from_owner(
                transport_failure(std::io::ErrorKind::ConnectionRefused),
                owner,
                kind,
            );
            assert_eq!(refused.code(), tonic::Code::Aborted, "{kind:?}");
            assert_eq!(reason(&refused), "TRANSACTION_OWNER_UNAVAILABLE");
        }
        let reset = from_owner(
            transport_failure(std::io::ErrorKind::ConnectionReset),
            owner,
            Kind::Commit,
        );
        assert_eq!(reset.code(), tonic::Code::Unknown);
        assert_eq!(reason(&reset), "COMMIT_OUTCOME_UNKNOWN");
        let reset = from_owner(
            transport_failure(std::io::ErrorKind::ConnectionReset),
            owner,
            Kind::Plain,
        );
        assert_eq!(reason(&reset), "TRANSACTION_OWNER_UNAVAILABLE");
    }
}

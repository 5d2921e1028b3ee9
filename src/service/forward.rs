//! Calls for a transaction another instance of the fleet owns, forwarded to
//! it: the client sees exactly what the owner answered.
//!
//! Forwarding is decided here, in one place for every RPC ([`unary`] for
//! Execute, ExecuteBatch, Commit and Rollback, [`stream`] for
//! ExecuteStream). The forwarded request carries the client's metadata (its
//! bearer token: the owner authenticates the caller itself and checks the
//! transaction is theirs), its remaining deadline, and [`FORWARDED_BY`] so
//! that it is never forwarded again. "Could not connect to the owner"
//! (nothing was sent: ABORTED / TRANSACTION_OWNER_UNAVAILABLE) is told apart
//! from "the call broke after it was sent" (for Commit: UNKNOWN /
//! COMMIT_OUTCOME_UNKNOWN) by the cause the channel reports, and both from
//! "the client's deadline passed first" (DEADLINE_EXCEEDED: the owner goes
//! on as with any call cut by its deadline). Metadata the owner would refuse
//! is refused before it is sent (METADATA_TOO_LARGE).
use std::{future::Future, net::SocketAddr, time::Duration};

use tonic::{Request, Response, Status, transport::Channel};

use super::{
    ExecuteStreamStream, deadline,
    outbox::{self, NotSent},
};
use crate::{
    api::{self, database_client::DatabaseClient},
    auth::{Principal, VOUCHED_PRINCIPAL},
    errors::GatewayError,
    fleet::{FORWARDED_BY, Fleet, MAX_HEADER_LIST_SIZE, Route},
    telemetry::RpcLog,
};

/// Where a call is served: here, or (when another instance of the fleet owns
/// its transaction) forwarded, with the owner's answer.
pub(super) enum Routed<T, A> {
    /// This instance serves the call.
    Here(Request<T>),
    /// The call was forwarded; this is what the client gets.
    Forwarded(Result<Response<A>, Status>),
}

/// A unary request that may name another instance's transaction: what the
/// one forwarding rule ([`unary`]) needs to know of each RPC.
pub(super) trait Forwardable: Sized + Send + 'static {
    /// The RPC's answer.
    type Answer: Send + 'static;
    /// The RPC's name, for logs and metrics.
    const METHOD: &'static str;
    /// The transaction the call is for ("" for none).
    fn transaction_id(&self) -> &str;
    /// Whether the call may commit (its outcome must never be guessed).
    fn kind(&self) -> Kind {
        Kind::Plain
    }
    /// Sends the request with `client`.
    fn send(
        client: DatabaseClient<Channel>,
        request: Request<Self>,
    ) -> impl Future<Output = Result<Response<Self::Answer>, Status>> + Send;
}

impl Forwardable for api::ExecuteRequest {
    type Answer = api::ExecuteResponse;
    const METHOD: &'static str = "Execute";
    fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
    fn kind(&self) -> Kind {
        if self.commit {
            Kind::Commit
        } else {
            Kind::Plain
        }
    }
    async fn send(
        mut client: DatabaseClient<Channel>,
        request: Request<Self>,
    ) -> Result<Response<Self::Answer>, Status> {
        client.execute(request).await
    }
}

impl Forwardable for api::ExecuteBatchRequest {
    type Answer = api::ExecuteBatchResponse;
    const METHOD: &'static str = "ExecuteBatch";
    fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
    async fn send(
        mut client: DatabaseClient<Channel>,
        request: Request<Self>,
    ) -> Result<Response<Self::Answer>, Status> {
        client.execute_batch(request).await
    }
}

impl Forwardable for api::CommitRequest {
    type Answer = api::CommitResponse;
    const METHOD: &'static str = "Commit";
    fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
    fn kind(&self) -> Kind {
        Kind::Commit
    }
    async fn send(
        mut client: DatabaseClient<Channel>,
        request: Request<Self>,
    ) -> Result<Response<Self::Answer>, Status> {
        client.commit(request).await
    }
}

impl Forwardable for api::RollbackRequest {
    type Answer = api::RollbackResponse;
    const METHOD: &'static str = "Rollback";
    fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
    async fn send(
        mut client: DatabaseClient<Channel>,
        request: Request<Self>,
    ) -> Result<Response<Self::Answer>, Status> {
        client.rollback(request).await
    }
}

/// Where a call on `transaction_id` is served: `None` here, `Some(owner)`
/// forwarded; an error when the owner left the fleet.
fn owner_elsewhere<T>(
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

/// The one forwarding rule of unary calls: a call for a transaction another
/// instance owns is forwarded to it (the client gets what the owner
/// answered); any other call is served here.
pub(super) async fn unary<T: Forwardable>(
    fleet: Option<&Fleet>,
    request: Request<T>,
) -> Routed<T, T::Answer> {
    let transaction_id = request.get_ref().transaction_id();
    let (fleet, owner) = match owner_elsewhere(fleet, &request, transaction_id) {
        Ok(Some(owner)) => owner,
        Ok(None) => return Routed::Here(request),
        Err(status) => return Routed::Forwarded(Err(status)),
    };
    let (method, kind) = (T::METHOD, request.get_ref().kind());
    let mut log = RpcLog::start(method, transaction_id, request.metadata());
    let timeout = deadline::client_timeout(request.metadata());
    let result = match outgoing(&fleet, request, owner, &mut log) {
        Ok(outgoing) => {
            let client = DatabaseClient::new(fleet.channel(owner));
            within(timeout, owner, kind, T::send(client, outgoing)).await
        }
        Err(status) => Err(status),
    };
    finish(log, method, &result);
    Routed::Forwarded(result)
}

/// Forwards an ExecuteStream call to the owner of its transaction, if
/// another instance owns it; its messages are passed on as the client takes
/// them (the owner's backpressure reaches the client).
pub(super) async fn stream(
    fleet: Option<&Fleet>,
    request: Request<api::ExecuteRequest>,
    stall_timeout: Duration,
) -> Routed<api::ExecuteRequest, ExecuteStreamStream> {
    let transaction_id = request.get_ref().transaction_id.as_str();
    let (fleet, owner) = match owner_elsewhere(fleet, &request, transaction_id) {
        Ok(Some(owner)) => owner,
        Ok(None) => return Routed::Here(request),
        Err(status) => return Routed::Forwarded(Err(status)),
    };
    let mut log = RpcLog::start("ExecuteStream", transaction_id, request.metadata());
    let timeout = deadline::client_timeout(request.metadata());
    let started = match outgoing(&fleet, request, owner, &mut log) {
        Ok(outgoing) => {
            let mut client = DatabaseClient::new(fleet.stream_channel(owner));
            within(timeout, owner, Kind::Plain, client.execute_stream(outgoing)).await
        }
        Err(status) => Err(status),
    };
    finish(log, "ExecuteStream", &started);
    let messages = match started {
        Ok(response) => response.into_inner(),
        Err(status) => return Routed::Forwarded(Err(status)),
    };
    Routed::Forwarded(Ok(Response::new(pass_on(messages, owner, stall_timeout))))
}

/// Runs a forwarded call until the client's deadline (`timeout`), if it set
/// one: past it, or when the channel's own timer for the same deadline
/// fires, the client gets DEADLINE_EXCEEDED, never "owner unavailable".
async fn within<A>(
    timeout: Option<Duration>,
    owner: SocketAddr,
    kind: Kind,
    call: impl Future<Output = Result<Response<A>, Status>>,
) -> Result<Response<A>, Status> {
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => return Err(cut_by_deadline(owner, limit, kind)),
        },
        None => call.await,
    };
    result.map_err(|status| match timed_out(&status) {
        true => cut_by_deadline(owner, timeout.unwrap_or_default(), kind),
        false => from_owner(status, owner, kind),
    })
}

/// DEADLINE_EXCEEDED for a forwarded call whose deadline passed before the
/// owner answered: the owner goes on as with any call cut by its deadline.
fn cut_by_deadline(owner: SocketAddr, limit: Duration, kind: Kind) -> Status {
    Status::from(GatewayError::ForwardedDeadlineExceeded {
        owner,
        limit,
        commit: kind == Kind::Commit,
    })
}

/// True when the channel's timer for the request's `grpc-timeout` ended the call.
fn timed_out(status: &Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Passes the owner's messages on as the client takes them. A task reads
/// them into a small [`outbox`](super::outbox): a client that takes no
/// message for `stall_timeout` has its stream ended with STREAM_STALLED, and
/// the forwarded stream is dropped (reset), so that what the owner sent and
/// nobody read stops holding the peer connection's flow-control window.
fn pass_on(
    mut messages: tonic::Streaming<api::ExecuteStreamResponse>,
    owner: SocketAddr,
    stall_timeout: Duration,
) -> ExecuteStreamStream {
    let (outbox, passed_on) = outbox::outbox(PASSED_ON);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = messages.message() => next,
                () = outbox.closed() => return,
            };
            let item = match next {
                Ok(Some(message)) => Ok(message),
                Ok(None) => return,
                Err(status) => {
                    outbox.finish(Err(from_owner(status, owner, Kind::Plain)));
                    return;
                }
            };
            match outbox.send(item, stall_timeout).await {
                Ok(()) => {}
                Err(NotSent::ClientLeft) => return,
                Err(NotSent::Stalled(_)) => {
                    drop(messages);
                    crate::stats::record_stream_stalled();
                    tracing::info!(forwarded_to = %owner, "a forwarded stream's client stalled; the stream was ended");
                    let stalled = GatewayError::StreamStalled(stall_timeout);
                    outbox.finish(Err(Status::from(stalled)));
                    return;
                }
            }
        }
    });
    Box::pin(passed_on)
}

/// Messages of a forwarded stream between the owner and the client.
const PASSED_ON: usize = 2;

/// The request to send on to `owner`: the client's metadata and message,
/// its remaining deadline, the forwarding mark, and the trace context of
/// this call's span (recorded in `log`). Refused when its metadata would be
/// larger than the owner accepts (see [`MAX_HEADER_LIST_SIZE`]).
#[allow(clippy::result_large_err)]
fn outgoing<T>(
    fleet: &Fleet,
    request: Request<T>,
    owner: SocketAddr,
    log: &mut RpcLog,
) -> Result<Request<T>, Status> {
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
    let size = header_list_size(outgoing.metadata());
    if size > FORWARDED_HEADER_LIST_SIZE {
        return Err(Status::from(GatewayError::MetadataTooLarge {
            size,
            limit: FORWARDED_HEADER_LIST_SIZE,
        }));
    }
    Ok(outgoing)
}

/// The most metadata a forwarded call may carry, counted as HTTP/2 counts
/// a header list (name, value and 32 bytes per entry): what every instance
/// accepts ([`MAX_HEADER_LIST_SIZE`]) less room for the headers the channel
/// adds itself (pseudo-headers, content-type, te, user-agent, grpc-timeout).
const FORWARDED_HEADER_LIST_SIZE: usize = MAX_HEADER_LIST_SIZE as usize - 512;

/// The size of `metadata` as an HTTP/2 header list.
fn header_list_size(metadata: &tonic::metadata::MetadataMap) -> usize {
    metadata
        .as_ref()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

/// The status to answer: the owner's own as is; a failure to connect as
/// "owner unavailable"; a call that broke once sent as "owner unavailable",
/// or for Commit "outcome unknown".
fn from_owner(status: Status, owner: SocketAddr, kind: Kind) -> Status {
    // The owner's statuses come from its trailers; the channel's own
    // failures (refused connection, reset, protocol error) carry their cause.
    if std::error::Error::source(&status).is_none() {
        // The owner's HTTP layer refused the headers (431) before any
        // gateway code ran: nothing was done, and it is no commit outcome.
        if status.code() == tonic::Code::Unknown
            && status.message().ends_with("HTTP status code 431")
        {
            return Status::from(GatewayError::MetadataTooLarge {
                size: 0,
                limit: FORWARDED_HEADER_LIST_SIZE,
            });
        }
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
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => "deadline_exceeded",
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

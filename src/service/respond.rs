//! A wrapper around the Database service (inside the authentication
//! interceptor, whose refusals are built with ErrorInfo in `auth`) that gives the statuses tonic
//! produces itself (before the gateway's handlers run) the gateway's codes
//! and an ErrorInfo, and answers calls whose deadline is already over.
//!
//! tonic answers on its own, as a trailers-only response (the status in the
//! response headers, no body), when a request message is over the decoding
//! limit (OUT_OF_RANGE), when its gRPC framing is bad (INTERNAL), when the
//! method is unknown or the `grpc-encoding` unsupported (UNIMPLEMENTED). Such a response has no
//! `grpc-status-details-bin`; [`status::from_transport`] decides what it
//! becomes. Every status of the gateway's own carries details and passes
//! unchanged.
//!
//! Errors in trailers (after response headers) need no such care: for the
//! unary and server-streaming calls of the Database service the request is
//! decoded before the handler runs, so tonic's decoding errors are all
//! trailers-only; what a server stream ends with is the gateway's own status
//! (with details) or, for a response message that cannot be encoded, nothing
//! reachable (prost encodes into a growing buffer and the encoding limit is
//! unbounded).
use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{
    Code, Status,
    body::Body,
    codegen::{Service, http},
    server::NamedService,
};

use super::deadline;
use crate::errors::{GatewayError, status};

/// The Database service (with its interceptor) wrapped; see the module docs.
#[derive(Clone)]
pub struct WithErrorInfo<S> {
    inner: S,
    max_request_bytes: usize,
}

impl<S> WithErrorInfo<S> {
    /// Wraps `inner`, whose decoding limit is `max_request_bytes`
    /// (--max-request-bytes, named in REQUEST_TOO_LARGE's message).
    pub fn new(inner: S, max_request_bytes: usize) -> Self {
        WithErrorInfo {
            inner,
            max_request_bytes,
        }
    }
}

impl<S: NamedService> NamedService for WithErrorInfo<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for WithErrorInfo<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + Unpin + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ErrorInfoFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // A deadline that is over already is answered here, at once: waiting
        // for the handler would let tonic's own `grpc-timeout` timer answer
        // CANCELLED first.
        if let Some(limit) = deadline::client_timeout_in(request.headers())
            .filter(|limit| deadline::already_expired(*limit))
        {
            let status = Status::from(GatewayError::DeadlineExceeded(limit));
            return ErrorInfoFuture::Answered(Some(status.into_http()));
        }
        ErrorInfoFuture::Inner {
            response: self.inner.call(request),
            max_request_bytes: self.max_request_bytes,
        }
    }
}

/// The response of [`WithErrorInfo`]: the inner service's, with
/// [`add_error_info`] applied (a future of its own rather than a boxed
/// `async` block: one allocation less per call).
pub enum ErrorInfoFuture<F> {
    /// Answered without calling the inner service.
    Answered(Option<http::Response<Body>>),
    /// The inner service's response, to be rewritten.
    Inner {
        /// The inner service's future.
        response: F,
        /// --max-request-bytes (see [`WithErrorInfo::new`]).
        max_request_bytes: usize,
    },
}

impl<F> Future for ErrorInfoFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, Infallible>> + Unpin,
{
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            ErrorInfoFuture::Answered(response) => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            ErrorInfoFuture::Inner {
                response,
                max_request_bytes,
            } => {
                let mut response = std::task::ready!(Pin::new(response).poll(cx))?;
                add_error_info(&mut response, *max_request_bytes);
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// Rewrites a trailers-only error response without details into the
/// gateway's status for it.
fn add_error_info(response: &mut http::Response<Body>, max_request_bytes: usize) {
    let headers = response.headers_mut();
    if headers.contains_key(Status::GRPC_STATUS_DETAILS) {
        return;
    }
    let Some(original) = Status::from_header_map(headers) else {
        return;
    };
    if original.code() == Code::Ok {
        return;
    }
    let status = Status::from(status::from_transport(&original, max_request_bytes));
    headers.remove(Status::GRPC_MESSAGE);
    // Fails only on bytes a header cannot hold; the message is
    // percent-encoded and the details base64, so it does not.
    if let Err(e) = status.add_header(headers) {
        tracing::warn!(error = %e, "could not add the error details to a response");
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    fn trailers_only(status: Status) -> http::Response<Body> {
        status.into_http()
    }

    fn status_of(response: &http::Response<Body>) -> Status {
        Status::from_header_map(response.headers()).expect("a trailers-only response")
    }

    #[test]
    fn statuses_without_details_get_error_info() {
        let mut response = trailers_only(Status::out_of_range(
            "Error, decoded message length too large: found 2048 bytes, the limit is: 1024 bytes",
        ));
        add_error_info(&mut response, 1024);
        let status = status_of(&response);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("--max-request-bytes"),
            "{status:?}"
        );
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, "REQUEST_TOO_LARGE");
        assert_eq!(info.domain, "sqlgate");

        let mut response = trailers_only(Status::internal(
            "protocol error: received message with invalid compression flag: 9",
        ));
        add_error_info(&mut response, 1024);
        let status = status_of(&response);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("compression flag"), "{status:?}");
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "MALFORMED_REQUEST"
        );
    }

    #[test]
    fn the_gateways_own_statuses_pass_unchanged() {
        let original = Status::from(GatewayError::ShuttingDown);
        let mut response = trailers_only(original);
        let before = response.headers().clone();
        add_error_info(&mut response, 1024);
        assert_eq!(response.headers(), &before);

        let mut ok = http::Response::new(Body::empty());
        add_error_info(&mut ok, 1024);
        assert!(ok.headers().is_empty());
    }
}

//! Time limits of calls: the client's `grpc-timeout` and `--statement-timeout`.
//!
//! tonic does not enforce `grpc-timeout` on its own for stream bodies and
//! reports expiry as CANCELLED, so the gateway reads the header itself. When a
//! limit passes, the call's work is dropped: its statement is killed on the
//! server (see `PooledConn` and `Lease`) and the client gets DEADLINE_EXCEEDED.
use std::time::Duration;

use tokio::time::Instant;

use tonic::metadata::MetadataMap;

use crate::errors::GatewayError;

/// The client's deadline, from the `grpc-timeout` header, if it sent one,
/// less a small margin: tonic's own timer for the same header answers
/// CANCELLED, so the gateway's must fire first for the client to get
/// DEADLINE_EXCEEDED (and the statement must be stopped by then anyway).
pub fn client_timeout(metadata: &MetadataMap) -> Option<Duration> {
    client_timeout_in(metadata.as_ref())
}

/// [`client_timeout`] from the request's HTTP headers.
pub fn client_timeout_in(headers: &tonic::codegen::http::HeaderMap) -> Option<Duration> {
    client_timeouts(headers).map(|(stop, _)| stop)
}

/// The client's deadline as two points: when the gateway stops the call's
/// work ([`client_timeout`]: the deadline less a margin of a fifth, at most
/// 100 ms) and the latest it still answers (three quarters of the margin
/// later), so that what a stopped statement did (see
/// [`CallDeadline::stop_or_learn`]: a KILL and its answer) can reach the
/// client before its own timer gives up.
fn client_timeouts(headers: &tonic::codegen::http::HeaderMap) -> Option<(Duration, Duration)> {
    let timeout = parse_grpc_timeout(headers.get("grpc-timeout")?.to_str().ok()?)?;
    let margin = (timeout / 5).min(Duration::from_millis(100));
    Some((timeout - margin, timeout - margin / 4))
}

/// The time limit of one unary call: the client's deadline, capped by
/// `--statement-timeout`, from the moment the call was taken up.
#[derive(Debug, Clone, Copy)]
pub struct CallDeadline {
    /// The limit, as configured or asked for (for messages).
    pub limit: Duration,
    /// When the call's work is stopped.
    pub stop_at: Instant,
    /// The latest the client still takes an answer (its own deadline less
    /// a small margin), if it set one.
    answer_by: Option<Instant>,
    /// When the client's deadline stops the call's work (a margin before
    /// `answer_by`), if it set one: it bounds a whole ExecuteStream, which
    /// `stop_at` (capped by --statement-timeout) bounds until its result
    /// starts only.
    client_stop: Option<Instant>,
}

/// What cut an ExecuteStream's rows (see [`CallDeadline::stop_mid_result`]).
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// The client's deadline.
    Deadline,
    /// A client that took no message for --stream-stall-timeout (the limit).
    Stalled(Duration),
}

/// What happened to a statement that ran into its time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It finished before its limit.
    No,
    /// Its answer (of any kind) came after the KILL was sent: the
    /// connection is at rest, but a KILL may still be on its way to it.
    Answered,
    /// No answer came in time: it may still run.
    Unanswered,
}

impl CallDeadline {
    /// The deadline of a call whose request carries `headers`, starting now.
    pub fn of(headers: &tonic::codegen::http::HeaderMap, statement_timeout: Duration) -> Self {
        let now = Instant::now();
        match client_timeouts(headers) {
            Some((stop, answer)) if stop <= statement_timeout => CallDeadline {
                limit: stop,
                stop_at: now + stop,
                answer_by: Some(now + answer),
                client_stop: Some(now + stop),
            },
            client => CallDeadline {
                limit: statement_timeout,
                stop_at: now + statement_timeout,
                answer_by: client.map(|(_, answer)| now + answer),
                client_stop: client.map(|(stop, _)| now + stop),
            },
        }
    }

    /// A deadline of `limit` from now, with no client deadline behind it
    /// (a Transaction stream's statement: the stream has its own).
    pub fn after(limit: Duration) -> Self {
        CallDeadline {
            limit,
            stop_at: Instant::now() + limit,
            answer_by: None,
            client_stop: None,
        }
    }

    /// Runs `work` until the call's work is stopped, as [`until`]; a limit
    /// that is [`already_expired`] fails at once.
    pub async fn until<T>(
        &self,
        work: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        if already_expired(self.limit) {
            return Err(GatewayError::DeadlineExceeded(self.limit));
        }
        until(self.stop_at, self.limit, work).await
    }

    /// Runs `work` (a whole ExecuteStream) until the latest moment the
    /// client still takes an answer, if it set a deadline: its statement is
    /// stopped earlier, at the call's limit (see [`Self::stop_or_learn`]);
    /// past it, `work` is dropped and the call fails with DEADLINE_EXCEEDED.
    pub async fn until_answer<T>(
        &self,
        work: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        match self.answer_by {
            Some(answer_by) => until(answer_by, self.limit, work).await,
            // No timer in the hot loop when the client set no deadline.
            None => work.await,
        }
    }

    /// The latest moment to wait for what a stopped statement (or a COMMIT
    /// in flight) did: `wait` after the stop, and never past the client's
    /// own deadline.
    fn answer_by(&self, wait: Duration) -> Instant {
        let own = self.stop_at + wait;
        self.answer_by.map_or(own, |client| client.min(own))
    }

    /// The bound of a call's steps after its statement answered: the
    /// session's check (a COM_PING after a failed statement in a
    /// transaction, the release of a CALL's savepoint), an autocommit
    /// write's replication position, and letting go of the session (the
    /// ROLLBACK of a transaction that a failed call began). `wait`
    /// (--acquire-timeout, the bound of the gateway's own round trips:
    /// a KILL, a connection's checkout) from now, and never past the
    /// client's own deadline: the statement may have used up the call's
    /// limit, and a server that answers takes one round trip, but one that
    /// stopped answering (a stopped or partitioned server) must not hold the
    /// call for ever.
    pub fn after_statement(&self, wait: Duration) -> Instant {
        let own = Instant::now() + wait;
        self.answer_by.map_or(own, |client| client.min(own))
    }

    /// Runs `statement` until the call's limit. Past it, a statement that
    /// cannot have committed anything by itself (`may_commit`, asked at
    /// that moment, false: in a transaction, which is then rolled back, on
    /// a READ ONLY session, or still in its READ ONLY text-path run)
    /// is dropped (the caller's session kills it) and the call fails with
    /// DEADLINE_EXCEEDED. One that may have (an autocommit statement,
    /// whatever its text: a SELECT may call a function that writes) may
    /// have finished and committed before the KILL lands, so its own
    /// connection is asked: `kill` is sent and the statement's answer is
    /// awaited, at most `wait` (and never past the client's own deadline):
    /// - interrupted (1317, or the server's own limit): it was stopped,
    ///   DEADLINE_EXCEEDED. Not for a CALL (`calls`): the statements of a
    ///   procedure commit one by one in autocommit mode, so an interrupted
    ///   one may have committed part of its work (UNKNOWN);
    /// - a result: it completed, and the call answers it (the client is
    ///   still waiting: the truth is at hand);
    /// - any other error: the statement's own (a lost connection is the
    ///   caller's to judge, as for any autocommit statement: UNKNOWN);
    /// - no answer in time: UNKNOWN / COMMIT_OUTCOME_UNKNOWN.
    pub async fn stop_or_learn<T, K>(
        &self,
        statement: impl Future<Output = Result<T, GatewayError>>,
        may_commit: impl FnOnce() -> bool,
        calls: bool,
        wait: Duration,
        kill: K,
    ) -> (Result<T, GatewayError>, Stopped)
    where
        K: Future<Output = ()>,
    {
        if already_expired(self.limit) {
            return (Err(GatewayError::DeadlineExceeded(self.limit)), Stopped::No);
        }
        let mut statement = std::pin::pin!(statement);
        let stopped = tokio::select! {
            biased;
            outcome = &mut statement => return (outcome, Stopped::No),
            () = tokio::time::sleep_until(self.stop_at) => GatewayError::DeadlineExceeded(self.limit),
        };
        if !may_commit() {
            return (Err(stopped), Stopped::Unanswered);
        }
        let answer = kill_and_wait(self.answer_by(wait), statement, kill).await;
        let outcome = match answer {
            Err(_) => {
                return (
                    Err(GatewayError::OutcomeUnknownAfterDeadline(format!(
                        "the statement was still running after {:?}, and no answer came after the gateway asked the database to stop it",
                        self.limit
                    ))),
                    Stopped::Unanswered,
                );
            }
            Ok(Err(e)) => Err(self.after_kill(e, calls)),
            Ok(outcome) => {
                if outcome.is_ok() {
                    tracing::info!(limit = ?self.limit, "the statement completed before the KILL of its time limit landed; answering its result");
                }
                outcome
            }
        };
        (outcome, Stopped::Answered)
    }

    /// When the client's deadline stops an ExecuteStream whose result has
    /// started, if it set one.
    pub fn client_stop(&self) -> Option<Instant> {
        self.client_stop
    }

    /// An ExecuteStream's result cut mid-rows (`cut`: by the client's
    /// deadline, [`Self::client_stop`], or by a client that took no message
    /// for --stream-stall-timeout) on a session where its statement may have
    /// committed by itself (autocommit, may write: a SELECT may call a
    /// function that writes). The server may have finished (and committed)
    /// while rows were still on their way, so `kill` is sent and the rest of
    /// the result (`rest`, read and discarded) is awaited, until the
    /// client's answer is due (a stall: `wait`, --acquire-timeout, as the
    /// steps after a statement):
    /// - interrupted: stopped before its end, nothing committed
    ///   (DEADLINE_EXCEEDED or STREAM_STALLED; UNKNOWN for a CALL, see
    ///   [`Self::after_kill`]);
    /// - its end: it completed, and committed whatever it wrote, but its rows
    ///   could not all reach the client: UNKNOWN / COMMIT_OUTCOME_UNKNOWN,
    ///   saying so ([`GatewayError::CompletedButCut`]);
    /// - any other error: the statement's own;
    /// - no answer in time: UNKNOWN.
    pub async fn stop_mid_result<K>(
        &self,
        cut: Cut,
        wait: Duration,
        rest: impl Future<Output = Result<(), GatewayError>>,
        kill: K,
        calls: bool,
    ) -> (GatewayError, Stopped)
    where
        K: Future<Output = ()>,
    {
        let (answer_by, why) = match cut {
            Cut::Deadline => (
                self.answer_by.unwrap_or_else(Instant::now),
                "the client's deadline passed",
            ),
            Cut::Stalled(_) => (
                self.after_statement(wait),
                "the client took no message for --stream-stall-timeout",
            ),
        };
        match kill_and_wait(answer_by, std::pin::pin!(rest), kill).await {
            Ok(Err(e)) => match cut {
                Cut::Stalled(limit) if e.interrupted() && !calls => {
                    (GatewayError::StreamStalled(limit), Stopped::Answered)
                }
                _ => (self.after_kill(e, calls), Stopped::Answered),
            },
            Ok(Ok(())) => (GatewayError::CompletedButCut(why), Stopped::Answered),
            Err(_) => (
                GatewayError::OutcomeUnknownAfterDeadline(format!(
                    "{why} while the statement's rows were being sent, and no answer came after the gateway asked the database to stop it"
                )),
                Stopped::Unanswered,
            ),
        }
    }

    /// The error a statement answered after its KILL (`calls`: a CALL): an
    /// interruption is the KILL's (DEADLINE_EXCEEDED; for a CALL, whose
    /// statements commit one by one in autocommit mode, UNKNOWN); any other
    /// error is the statement's own.
    pub fn after_kill(&self, error: GatewayError, calls: bool) -> GatewayError {
        match error.interrupted() {
            true if calls => GatewayError::OutcomeUnknownAfterDeadline(format!(
                "the procedure was stopped after {:?}; in autocommit mode the statements it ran before commit one by one",
                self.limit
            )),
            true => GatewayError::DeadlineExceeded(self.limit),
            false => error,
        }
    }

    /// Waits for a COMMIT in flight (it runs to its end whatever happens to
    /// the call, so the call waits for its outcome past its own limit) until
    /// the client's own deadline is about to pass, or, when the client set
    /// none, for the call's limit (`--statement-timeout`) from now: a server
    /// that never answers cannot hold the call for ever. Then fails with
    /// UNKNOWN / COMMIT_OUTCOME_UNKNOWN, which says how to learn the outcome
    /// (`how`).
    pub async fn commit_outcome<T>(
        &self,
        how: &str,
        commit: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let answer_by = self
            .answer_by
            .unwrap_or_else(|| Instant::now() + self.limit);
        tokio::time::timeout_at(answer_by, commit)
            .await
            .unwrap_or_else(|_| {
                Err(GatewayError::OutcomeUnknownAfterDeadline(format!(
                    "the call's deadline was about to pass while COMMIT was in flight; COMMIT runs to its end: {how}"
                )))
            })
    }
}

/// Sends `kill` while waiting for `statement`'s answer, until `answer_by`.
async fn kill_and_wait<T, K>(
    answer_by: Instant,
    mut statement: std::pin::Pin<&mut impl Future<Output = Result<T, GatewayError>>>,
    kill: K,
) -> Result<Result<T, GatewayError>, tokio::time::error::Elapsed>
where
    K: Future<Output = ()>,
{
    let mut kill = std::pin::pin!(kill);
    let mut killed = false;
    tokio::time::timeout_at(answer_by, async {
        loop {
            tokio::select! {
                outcome = &mut statement => break outcome,
                () = &mut kill, if !killed => killed = true,
            }
        }
    })
    .await
}

/// True when a time limit is over before anything started: zero, or below
/// the timer's resolution (a millisecond), which no call can meet. Such a
/// call is answered DEADLINE_EXCEEDED at once, without touching the database
/// (and before tonic's own timer for `grpc-timeout` answers CANCELLED).
pub fn already_expired(limit: Duration) -> bool {
    limit < Duration::from_millis(1)
}

/// Parses the gRPC wire format: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// Runs `work` within `limit`; past it, `work` is dropped (which stops its
/// statement) and the call fails with DEADLINE_EXCEEDED. A limit that is
/// [`already_expired`] fails at once: `work` is never polled.
pub async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    if already_expired(limit) {
        return Err(GatewayError::DeadlineExceeded(limit));
    }
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(GatewayError::DeadlineExceeded(limit)))
}

/// Runs `work` until `deadline`, a point in time shared by the steps of one
/// call (so that two steps cannot each take the whole `limit`); past it, as
/// [`within`].
pub async fn until<T>(
    deadline: tokio::time::Instant,
    limit: Duration,
    work: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or(Err(GatewayError::DeadlineExceeded(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_expired_limit_never_polls_the_work() {
        for limit in [Duration::ZERO, Duration::from_micros(999)] {
            let outcome: Result<(), _> =
                within(limit, async { panic!("the work must not run") }).await;
            assert!(matches!(outcome, Err(GatewayError::DeadlineExceeded(_))));
        }
        assert_eq!(
            within(Duration::from_secs(1), async { Ok(7) })
                .await
                .unwrap(),
            7
        );
    }

    /// Without a client deadline, a COMMIT that never answers is waited for
    /// the call's limit from when it was sent, then answered UNKNOWN.
    #[tokio::test]
    async fn a_commit_that_never_answers_is_unknown_after_the_limit() {
        let limit = Duration::from_millis(200);
        let deadline = CallDeadline::of(&tonic::codegen::http::HeaderMap::new(), limit);
        tokio::time::sleep(limit).await;
        let sent = Instant::now();
        let outcome: Result<(), _> = deadline
            .commit_outcome("ask again", std::future::pending())
            .await;
        assert!(matches!(
            outcome,
            Err(GatewayError::OutcomeUnknownAfterDeadline(ref message)) if message.contains("ask again")
        ));
        let waited = sent.elapsed();
        assert!(
            waited >= limit && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        // One that answers in time is its answer.
        let answered = deadline.commit_outcome("", async { Ok(7) }).await;
        assert_eq!(answered.unwrap(), 7);
    }

    #[test]
    fn a_client_deadline_stops_a_fifth_early_and_answers_before_it_passes() {
        let mut headers = tonic::codegen::http::HeaderMap::new();
        headers.insert("grpc-timeout", "1S".parse().unwrap());
        let now = Instant::now();
        let deadline = CallDeadline::of(&headers, Duration::from_secs(30));
        assert_eq!(deadline.limit, Duration::from_millis(900));
        let answer_by = deadline.answer_by(Duration::from_secs(5)) - now;
        assert!(answer_by >= Duration::from_millis(975) && answer_by < Duration::from_secs(1));
        // A shorter --statement-timeout stops first; the client's deadline
        // still bounds the wait for the answer.
        let deadline = CallDeadline::of(&headers, Duration::from_millis(300));
        assert_eq!(deadline.limit, Duration::from_millis(300));
        let answer_by = deadline.answer_by(Duration::from_secs(5)) - now;
        assert!(answer_by >= Duration::from_millis(975) && answer_by < Duration::from_secs(1));
        let unbounded = CallDeadline::after(Duration::from_millis(300));
        let answer_by = unbounded.answer_by(Duration::from_secs(5)) - now;
        assert!(answer_by >= Duration::from_millis(5300));
    }

    #[test]
    fn an_interruption_after_the_kill_is_the_kill_s() {
        let server = |code| {
            GatewayError::Database(mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: String::new(),
                state: String::new(),
            }))
        };
        let deadline = CallDeadline::after(Duration::from_millis(300));
        for code in [1317, 1969, 3024] {
            assert!(matches!(
                deadline.after_kill(server(code), false),
                GatewayError::DeadlineExceeded(_)
            ));
            assert!(matches!(
                deadline.after_kill(server(code), true),
                GatewayError::OutcomeUnknownAfterDeadline(_)
            ));
        }
        assert_eq!(
            deadline.after_kill(server(1062), false).mysql_errno(),
            Some(1062)
        );
    }

    #[test]
    fn zero_timeouts_are_already_expired() {
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", "0m".parse().unwrap());
        assert!(already_expired(client_timeout(&metadata).unwrap()));
        metadata.insert("grpc-timeout", "500u".parse().unwrap());
        assert!(already_expired(client_timeout(&metadata).unwrap()));
        metadata.insert("grpc-timeout", "100m".parse().unwrap());
        assert!(!already_expired(client_timeout(&metadata).unwrap()));
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("200m"), Some(Duration::from_millis(200)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}

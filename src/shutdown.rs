//! Waiting for the signals that start a graceful shutdown.
//!
//! Orchestrators send SIGTERM on rollout and people press Ctrl-C (SIGINT):
//! both start the same graceful shutdown (see [`crate::server`]).

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("can install a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("can install a SIGINT handler");
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "received shutdown signal");
}

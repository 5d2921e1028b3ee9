//! sqlgate: a gRPC gateway to MySQL and MariaDB.
//!
//! The crate is laid out by concern:
//! - [`config`] — the command line and the validated settings it produces;
//! - [`api`] — the generated protobuf types and service traits ([`codec`]: their codec);
//! - [`server`] — wiring the gRPC server and the order of start-up and shutdown;
//! - [`service`] — the `Database` RPCs, thin glue over the modules below;
//! - [`transactions`] — transactions pinned to pooled connections, their ids and expiry;
//! - [`outcomes`] — request ids: outcomes of writes recorded with them, replays, purging;
//! - [`statement`] — running one statement on a connection, and the SQL guard;
//! - [`values`] — converting between protobuf `Value`s and MySQL values;
//! - [`database`] — the connection pool and its control connections;
//! - [`auth`] — bearer tokens and the principal of each call;
//! - [`errors`] — the gateway's error type and the one place it becomes a gRPC status;
//! - [`fleet`] — the other gateway instances, and where a transaction's calls go;
//! - [`health`] — the gRPC health service fed by database pings;
//! - [`heap`] — giving memory freed after a burst back to the system;
//! - [`embedded`] — the private MariaDB/MySQL server used when no database URL is given;
//! - [`limits`] — bounds on connections and on requests being received;
//! - [`shutdown`] — the signals that start a graceful shutdown;
//! - [`stats`] — Prometheus metrics;
//! - [`tasks`] — background work that shutdown waits for;
//! - [`telemetry`] — logging.

// Unsafe code only in `heap` (two calls into glibc), nowhere else.
#![deny(unsafe_code)]

pub(crate) mod accounts;
pub mod api;
pub(crate) mod auth;
pub(crate) mod codec;
pub mod config;
pub(crate) mod database;
pub mod embedded;
pub(crate) mod errors;
pub(crate) mod fleet;
pub(crate) mod health;
pub(crate) mod heap;
pub mod limits;
pub(crate) mod outcomes;
pub mod server;
pub(crate) mod service;
pub mod shutdown;
pub(crate) mod statement;
pub(crate) mod stats;
pub(crate) mod tasks;
pub mod telemetry;
pub(crate) mod transactions;
pub(crate) mod values;

/// The SQL guard, public for the tests that compare it with a real server.
pub use statement::guard;

/// The commands that turn on session state tracking on each pooled
/// connection, public for the tests that check what the server flags.
pub use database::session_tracking_setup;

#[cfg(test)]
mod untrusted_input;

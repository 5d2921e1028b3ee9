//! Converting between protobuf `Value`s and MySQL values.
//!
//! Results: which case a cell takes follows only from its column's type (see
//! `CellKind::for_column` and the README's type table), never from the
//! value. Parameters: each case becomes the value the binary protocol sends;
//! the text forms of dates, times and decimals are checked here so that bad
//! input fails before it reaches the database.
//!
//! Error messages are static text: they name the case and the expected form
//! and never contain the value itself (values may be secrets).
//!
//! - `params` — a request's `Value` becomes a MySQL parameter
//!   ([`param_to_mysql`]);
//! - `cell` — a result cell becomes a `Value`, or the wire bytes of one;
//! - `columns` — a result column's metadata as clients see it.

/// Why a value could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// A request parameter is malformed: the client's fault.
    #[error("invalid parameter: {0}")]
    BadParameter(&'static str),
    /// A result cell does not fit its column's case: the server's or the gateway's fault.
    #[error("cannot convert a result cell: a {column} column sent {problem}")]
    BadCell {
        /// The column's case, e.g. "DATETIME".
        column: &'static str,
        /// What arrived, e.g. "invalid UTF-8".
        problem: &'static str,
    },
}

impl ValueError {
    /// True for errors caused by the request (INVALID_ARGUMENT), false for
    /// result cells the gateway could not convert (INTERNAL).
    pub fn is_client_error(&self) -> bool {
        matches!(self, ValueError::BadParameter(_))
    }
}

pub(crate) mod cell;
mod columns;
mod params;

pub(crate) use cell::{CellKind, approximate_size, cell_to_value};
pub(crate) use columns::{describe_column, encoded_columns};
pub use params::{decimal_scale, param_to_mysql};

#[cfg(test)]
mod tests;

//! The text protocol for an autocommit plain read on a freshly reset session
//! (`--text-protocol auto`): instead of PREPARE + EXECUTE, one COM_QUERY with
//! the parameters written as literals the server reads exactly as the bound
//! values. MariaDB spends 12–20 % less CPU on it (BENCHMARKS.md, "No PREPARE
//! after a reset: the options").
//!
//! The answer must be what the binary protocol gives, so the path is taken
//! only when nothing can tell them apart:
//! - **the text** ([`shape_allows`]): every `?` is a placeholder under every
//!   reading ([`super::placeholders`]), one statement (no `;`), no
//!   `ORDER`/`GROUP` (where an integer literal is a column position and a
//!   parameter a constant), nothing that reads what an earlier statement left
//!   (`FOUND_ROWS`, `ROW_COUNT`, warnings, diagnostics), no placeholder that
//!   follows a word that would make a literal of another type (`DATE ?`,
//!   `_utf8mb4 ?`, `N ?`) or directly follows another (`? ?`: adjacent string
//!   literals concatenate); at most 4 KiB of text, 64 KiB with the literals.
//! - **the parameters** ([`push_literal`]): integers (not `i64::MIN`, which is
//!   a DECIMAL negated), finite doubles and floats as shortest round-trip
//!   digits with an exponent (`1e-1`: the server types it DOUBLE, the same
//!   bits), strings and bytes that are UTF-8 without a backslash or NUL
//!   quoted with `''` (read the same with and without
//!   `NO_BACKSLASH_ESCAPES`, in the connection's character set and
//!   collation, coercible, as a bound string), NULL. Dates and times stay
//!   binary.
//! - **the result**: the statement text ran on the binary protocol before and
//!   its columns were remembered ([`remember`]); a text run whose column
//!   metadata (names, types, flags, lengths, decimals, character sets)
//!   differs in anything is dropped and run again binary, and the text is
//!   never tried again; so is one with warnings. Every column must be of a
//!   kind whose text form converts to exactly the binary value
//!   ([`converts_exactly`]; tests/text_protocol.rs runs the type matrix
//!   through both paths). A binary run whose columns differ from the
//!   remembered ones (metadata that depends on the values) also ends the
//!   text path for that statement.
//! - **errors**: a text run that fails with a server error is run again
//!   binary and the binary answer is returned (errno, state and message as
//!   the binary path gives them); an interrupted statement (a deadline's
//!   KILL) is not run again.
//! - **running twice**: a statement dropped after its text run is run again,
//!   so the text run must not have written anything. Its text says it is a
//!   plain read, but a view may call a function that writes (a MyISAM log, a
//!   sequence's NEXTVAL), which no text shows: every text run goes as
//!   `SET STATEMENT tx_read_only=1 FOR …`, a READ ONLY transaction of its
//!   own, where the server refuses any write before making it (error 1792);
//!   that statement then runs binary, once, and stays binary.
use std::{
    collections::HashMap,
    fmt::Write,
    sync::{Arc, LazyLock, Mutex},
};

use mysql_async::{Column, Conn, Value as MyValue, prelude::Queryable};

use super::{ResultLimits, StatementResult, mentions_any, placeholders};
use crate::{database::Backend, errors::GatewayError, values::CellKind};

/// Statement texts whose columns are remembered (cleared when full).
const MAX_KNOWN: usize = 2048;

/// Longest statement text (with placeholders) that may go as text: the
/// remembered texts stay small.
const MAX_SQL_LEN: usize = 4096;

/// Longest text with its literals: a long parameter stays bound (the
/// binary protocol sends it as long data; a text query could exceed
/// max_allowed_packet).
const MAX_TEXT_LEN: usize = 64 * 1024;

/// Words that keep a statement on the binary protocol (see the module docs).
const BINARY_WORDS: [&str; 7] = [
    "ORDER",
    "GROUP",
    "FOUND_ROWS",
    "ROW_COUNT",
    "WARNING",
    "ERROR",
    "DIAGNOSTICS",
];

/// Words after which a quoted literal would be read as another type.
const LITERAL_PREFIXES: [&str; 6] = ["N", "X", "B", "DATE", "TIME", "TIMESTAMP"];

/// Put before every text run: the statement runs in a READ ONLY
/// transaction of its own, so that it can write nothing (a view may call a
/// function that writes, which the text cannot show). One that tries fails
/// with [`READ_ONLY_REFUSAL`] before writing and runs binary: a statement
/// that may be run again after its text run must not have written.
const READ_ONLY_PREFIX: &str = "SET STATEMENT tx_read_only=1 FOR ";

/// `ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION`: the text run tried to write.
const READ_ONLY_REFUSAL: u16 = 1792;

/// Server errors of an interrupted statement, which is not run again.
const INTERRUPTED: [u16; 3] = [1317, 1969, 3024];

/// MariaDB's (39) and MySQL's (31) "not fixed" decimals of a floating-point
/// column: printed with round-trip precision rather than a fixed number of
/// digits.
const NOT_FIXED_DECIMALS: u8 = 31;

/// What is known of a statement text.
enum Known {
    /// The columns of its binary runs.
    Columns(Arc<[Column]>),
    /// It stays on the binary protocol.
    Binary,
}

static KNOWN: LazyLock<Mutex<HashMap<Box<str>, Known>>> = LazyLock::new(Default::default);

fn known() -> std::sync::MutexGuard<'static, HashMap<Box<str>, Known>> {
    KNOWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// True when the text of a statement with `params` parameters may take the
/// text path (see the module docs).
pub(super) fn shape_allows(sql: &str, params: usize) -> bool {
    if sql.len() > MAX_SQL_LEN
        || placeholders::unambiguous_placeholders(sql) != Some(params)
        || sql.contains(';')
        || mentions_any(sql, &BINARY_WORDS)
    {
        return false;
    }
    let bytes = sql.as_bytes();
    bytes.iter().enumerate().all(|(at, &b)| {
        if b != b'?' {
            return true;
        }
        let before = bytes[..at].trim_ascii_end();
        let word_start = before
            .iter()
            .rposition(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b'$'))
            .map_or(0, |p| p + 1);
        let word = &before[word_start..];
        let prefix = word.first() == Some(&b'_')
            || LITERAL_PREFIXES
                .iter()
                .any(|p| word.eq_ignore_ascii_case(p.as_bytes()));
        let after = bytes[at + 1..].trim_ascii_start();
        !prefix && after.first() != Some(&b'?')
    })
}

/// The statement text with `params` written in as literals, and the columns
/// its result must have; `None` when it must go binary.
pub(super) fn query_for(sql: &str, params: &[MyValue]) -> Option<(String, Arc<[Column]>)> {
    let columns = match known().get(sql)? {
        Known::Columns(columns) => columns.clone(),
        Known::Binary => return None,
    };
    if !columns.iter().all(converts_exactly) {
        return None;
    }
    let mut text = String::with_capacity(READ_ONLY_PREFIX.len() + sql.len() + params.len() * 8);
    text.push_str(READ_ONLY_PREFIX);
    let mut params = params.iter();
    for (index, piece) in sql.split('?').enumerate() {
        if index > 0 {
            text.push(' ');
            push_literal(&mut text, params.next()?)?;
            text.push(' ');
        }
        text.push_str(piece);
        if text.len() > MAX_TEXT_LEN {
            return None;
        }
    }
    Some((text, columns))
}

/// Notes the columns of a binary run of `sql` (a statement [`shape_allows`]).
pub(super) fn remember(sql: &str, columns: Arc<[Column]>) {
    let mut known = known();
    match known.get(sql) {
        Some(Known::Binary) => {}
        Some(Known::Columns(before)) if *before == columns => {}
        // The columns depend on the values: the text run's cannot be checked.
        Some(Known::Columns(_)) => {
            known.insert(sql.into(), Known::Binary);
        }
        None => {
            if known.len() >= MAX_KNOWN {
                known.clear();
            }
            known.insert(sql.into(), Known::Columns(columns));
        }
    }
}

/// Keeps `sql` on the binary protocol from now on.
fn keep_binary(sql: &str) {
    known().insert(sql.into(), Known::Binary);
}

/// True when cells of `column` read from the text protocol convert to exactly
/// the value the binary protocol gives (tests/text_protocol.rs).
pub(crate) fn converts_exactly(column: &Column) -> bool {
    match CellKind::for_column(column) {
        // MariaDB prints FLOAT with 6 significant digits (16777216 as
        // 16777200), and a DOUBLE of fixed decimals with those: rounded text.
        CellKind::Float => false,
        CellKind::Double => column.decimals() >= NOT_FIXED_DECIMALS,
        // The binary form is printed with the column's decimals (at most 6).
        CellKind::Datetime { .. } | CellKind::Time { .. } => column.decimals() <= 6,
        _ => true,
    }
}

/// Appends `value` as a literal the server reads as the bound parameter;
/// `None` for a value that must be bound.
fn push_literal(text: &mut String, value: &MyValue) -> Option<()> {
    match value {
        MyValue::NULL => text.push_str("NULL"),
        MyValue::Int(v) if *v != i64::MIN => write!(text, "{v}").ok()?,
        MyValue::UInt(v) => write!(text, "{v}").ok()?,
        MyValue::Double(v) => push_double(text, *v)?,
        // The server widens a bound FLOAT to a double.
        MyValue::Float(v) => push_double(text, f64::from(*v))?,
        MyValue::Bytes(bytes) => {
            let string = std::str::from_utf8(bytes).ok()?;
            if string.bytes().any(|b| b == b'\\' || b == 0) {
                return None;
            }
            text.push('\'');
            for piece in string.split_inclusive('\'') {
                text.push_str(piece);
                if piece.ends_with('\'') {
                    text.push('\'');
                }
            }
            text.push('\'');
        }
        MyValue::Int(_) | MyValue::Date(..) | MyValue::Time(..) => return None,
    }
    Some(())
}

/// Shortest round-trip digits with an exponent: a DOUBLE literal of the same
/// bits. Not for NaN, infinities and -0 (a negated 0e0).
fn push_double(text: &mut String, value: f64) -> Option<()> {
    if !value.is_finite() || (value == 0.0 && value.is_sign_negative()) {
        return None;
    }
    write!(text, "{value:e}").ok()
}

/// Runs `text` (the statement `sql` with its literals) on the text protocol;
/// `None` when the statement must run binary after all (nothing was returned
/// to the client; `bytes_used` is the caller's to restore).
pub(super) async fn run(
    backend: &Backend,
    conn: &mut Conn,
    sql: &str,
    text: String,
    expected: &[Column],
    limits: ResultLimits,
    bytes_used: &mut u64,
) -> Result<Option<StatementResult>, GatewayError> {
    let connection_id = conn.id();
    let result = match conn.query_iter(text).await {
        Ok(result) => result,
        Err(mysql_async::Error::Server(e)) if e.code == READ_ONLY_REFUSAL => {
            keep_binary(sql);
            return Ok(None);
        }
        Err(e) if run_binary_after(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if result.columns().as_deref() != Some(expected) {
        keep_binary(sql);
        return match result.drop_result().await {
            Ok(()) => Ok(None),
            Err(e) if run_binary_after(&e) => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    match super::read_result(backend, connection_id, result, limits, bytes_used).await {
        Ok(output) if output.warning_count == 0 => Ok(Some(output)),
        Ok(_) => {
            keep_binary(sql);
            Ok(None)
        }
        Err(GatewayError::Database(e)) if run_binary_after(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A server error (not an interruption): the binary run gives the answer.
fn run_binary_after(error: &mysql_async::Error) -> bool {
    matches!(error, mysql_async::Error::Server(e) if !INTERRUPTED.contains(&e.code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(value: MyValue) -> Option<String> {
        let mut text = String::new();
        push_literal(&mut text, &value).map(|()| text)
    }

    #[test]
    fn literals_are_exact_or_absent() {
        assert_eq!(literal(MyValue::Int(-5)).as_deref(), Some("-5"));
        assert_eq!(literal(MyValue::Int(i64::MIN)), None);
        assert_eq!(
            literal(MyValue::UInt(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(literal(MyValue::Double(0.1)).as_deref(), Some("1e-1"));
        assert_eq!(literal(MyValue::Double(1e300)).as_deref(), Some("1e300"));
        assert_eq!(literal(MyValue::Double(0.0)).as_deref(), Some("0e0"));
        assert_eq!(literal(MyValue::Double(-0.0)), None);
        assert_eq!(literal(MyValue::Double(f64::NAN)), None);
        assert_eq!(literal(MyValue::Float(1.5)).as_deref(), Some("1.5e0"));
        assert_eq!(literal(MyValue::NULL).as_deref(), Some("NULL"));
        assert_eq!(
            literal(MyValue::Bytes(b"it's".to_vec())).as_deref(),
            Some("'it''s'")
        );
        assert_eq!(literal(MyValue::Bytes(b"a\\b".to_vec())), None);
        assert_eq!(literal(MyValue::Bytes(b"a\0b".to_vec())), None);
        assert_eq!(literal(MyValue::Bytes(vec![0xff])), None);
        assert_eq!(literal(MyValue::Date(2024, 1, 1, 0, 0, 0, 0)), None);
    }

    #[test]
    fn doubles_round_trip_through_their_literal() {
        for v in [0.1, 1.0 / 3.0, 5e-324, f64::MAX, -2.5e-8, 123456789.0] {
            let text = literal(MyValue::Double(v)).unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                v.to_bits(),
                "{text}"
            );
            assert!(text.contains('e'), "{text}");
        }
    }

    #[test]
    fn only_plain_shapes_take_the_text_path() {
        assert!(shape_allows("SELECT v FROM t WHERE id = ?", 1));
        assert!(shape_allows(
            "SELECT v FROM t WHERE id IN (?, ?) LIMIT ?",
            3
        ));
        for (sql, params) in [
            ("SELECT v FROM t WHERE id = ?", 2),
            ("SELECT v FROM t WHERE s = '?'", 0),
            ("SELECT v FROM t ORDER BY ?", 1),
            ("SELECT v FROM t GROUP BY ?", 1),
            ("SELECT 1; SELECT ?", 1),
            ("SELECT ? ?", 2),
            ("SELECT DATE ?", 1),
            ("SELECT _utf8mb4 ?", 1),
            ("SELECT n ?", 1),
            ("SELECT FOUND_ROWS(), ?", 1),
            ("SELECT @@warning_count + ?", 1),
        ] {
            assert!(!shape_allows(sql, params), "{sql}");
        }
    }

    #[test]
    fn literals_go_where_the_placeholders_were() {
        let sql = "SELECT ?+1, 2-? FROM known_shape_test WHERE a = ?";
        assert!(shape_allows(sql, 3));
        assert!(query_for(sql, &[MyValue::Int(1)]).is_none(), "not run yet");
        remember(sql, Arc::from(Vec::new()));
        let (text, _) =
            query_for(sql, &[MyValue::Int(1), MyValue::Int(-2), MyValue::NULL]).expect("known now");
        assert_eq!(
            text,
            "SET STATEMENT tx_read_only=1 FOR SELECT  1 +1, 2- -2  FROM known_shape_test WHERE a =  NULL "
        );
        assert!(
            query_for(
                sql,
                &[MyValue::Int(1), MyValue::Int(i64::MIN), MyValue::NULL]
            )
            .is_none()
        );
        let long = MyValue::Bytes(vec![b'a'; MAX_TEXT_LEN]);
        assert!(query_for(sql, &[MyValue::Int(1), MyValue::Int(2), long]).is_none());
        keep_binary(sql);
        assert!(query_for(sql, &[MyValue::Int(1), MyValue::Int(2), MyValue::NULL]).is_none());
    }
}

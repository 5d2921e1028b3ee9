//! Decimal and date parameters keep their types. mysql_async has no DECIMAL
//! value for the binary protocol, so a `decimal_value` goes to the server as
//! a string, and the server computes with a string operand in floating
//! point: `x + ?` with x = 2.9 and `37.12` gives 40.019999999999996. Every
//! `?` that receives a decimal is therefore written `CAST(? AS
//! DECIMAL(65,s))`, s the value's scale, so the server computes with the
//! exact decimal, as it does for a client that sends the value typed
//! (MYSQL_TYPE_NEWDECIMAL). Likewise a `date_value` goes as a DATETIME and is
//! written `CAST(? AS DATE)`, so that `SELECT ?` or `? + INTERVAL 1 DAY` is a
//! DATE. Storing into DECIMAL and DATE columns was exact either way.
//!
//! The statement text (and so the prepared statement) depends only on the
//! types and scales, not on the values. A decimal that does not fit
//! DECIMAL(65, 30), and the zero date (whose cast depends on `sql_mode`),
//! are left as they are.
use std::{borrow::Cow, fmt::Write};

use super::guard;
use crate::{
    api::{self, value::Kind},
    values,
};

/// The type a parameter's placeholder is cast to.
#[derive(Debug, Clone, Copy)]
enum Cast {
    Decimal { scale: u32 },
    Date,
}

/// `sql` with the placeholders of decimal and date `params` cast to their
/// types; `sql` itself when there are none, or when the placeholders cannot
/// be told apart with certainty or do not match the parameters (which
/// preparing the statement reports).
///
/// `sql_mode`: the session's quoting, when known (see [`guard::placeholders`]).
pub(super) fn with_typed_placeholders<'a>(
    sql: &'a str,
    params: &[api::Value],
    sql_mode: Option<guard::SqlMode>,
) -> Cow<'a, str> {
    let casts: Vec<Option<Cast>> = params
        .iter()
        .map(|param| match &param.kind {
            Some(Kind::DecimalValue(text)) => {
                values::decimal_scale(text).map(|scale| Cast::Decimal { scale })
            }
            Some(Kind::DateValue(text)) if text != "0000-00-00" => Some(Cast::Date),
            _ => None,
        })
        .collect();
    if casts.iter().all(Option::is_none) {
        return Cow::Borrowed(sql);
    }
    let Some(offsets) = guard::placeholders(sql, sql_mode) else {
        return Cow::Borrowed(sql);
    };
    if offsets.len() != params.len() {
        return Cow::Borrowed(sql);
    }
    let mut typed = String::with_capacity(sql.len() + 32 * offsets.len());
    let mut copied = 0;
    for (offset, cast) in offsets.into_iter().zip(casts) {
        let Some(cast) = cast else { continue };
        // No blank before CAST: after `--` it would start a comment.
        typed.push_str(&sql[copied..offset]);
        let _ = match cast {
            Cast::Decimal { scale } => write!(typed, "CAST(? AS DECIMAL(65,{scale}))"),
            Cast::Date => write!(typed, "CAST(? AS DATE)"),
        };
        copied = offset + 1;
    }
    typed.push_str(&sql[copied..]);
    Cow::Owned(typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> api::Value {
        api::Value {
            kind: Some(Kind::DecimalValue(text.into())),
        }
    }

    fn date(text: &str) -> api::Value {
        api::Value {
            kind: Some(Kind::DateValue(text.into())),
        }
    }

    fn int(v: i64) -> api::Value {
        api::Value {
            kind: Some(Kind::Int64Value(v)),
        }
    }

    #[test]
    fn decimal_and_date_placeholders_are_cast_and_nothing_else_changes() {
        let sql = "SELECT x + ?, '?', `?`, ? /* ? */ FROM t WHERE id = ?";
        assert_eq!(
            with_typed_placeholders(sql, &[decimal("37.12"), int(1), decimal("1.5e-3")], None),
            "SELECT x + CAST(? AS DECIMAL(65,2)), '?', `?`, ? /* ? */ FROM t WHERE id = CAST(? AS DECIMAL(65,4))"
        );
        assert_eq!(
            with_typed_placeholders(
                "SELECT ?, ?",
                &[date("2012-10-15"), date("0000-00-00")],
                None
            ),
            "SELECT CAST(? AS DATE), ?"
        );
        // `--?` stays minus minus a value, not a comment.
        assert_eq!(
            with_typed_placeholders("SELECT 1 --?", &[decimal("2")], None),
            "SELECT 1 --CAST(? AS DECIMAL(65,0))"
        );
        // No decimal, a decimal too large, a count that does not match: as is.
        for (sql, params) in [
            ("SELECT ?", vec![int(1)]),
            ("SELECT ?", vec![decimal(&"9".repeat(70))]),
            ("SELECT ?, ?", vec![decimal("1.5")]),
        ] {
            assert!(matches!(
                with_typed_placeholders(sql, &params, None),
                Cow::Borrowed(_)
            ));
        }
        // Quoting that reads differently under some sql_mode: as is.
        let ambiguous = r#"SELECT "a\"?", ?"#;
        assert!(guard::placeholders(ambiguous, None).is_none());
        // Unless the session's mode is known: its reading only.
        let default = Some(guard::SqlMode::default());
        assert_eq!(
            with_typed_placeholders(ambiguous, &[decimal("1.5")], default),
            r#"SELECT "a\"?", CAST(? AS DECIMAL(65,1))"#
        );
        let ansi_quotes = Some(guard::SqlMode {
            ansi_quotes: true,
            ..guard::SqlMode::default()
        });
        // `"a\"` is an identifier, then `?", ?` ends inside a string: as is.
        assert_eq!(guard::placeholders(ambiguous, ansi_quotes), None);
    }
}

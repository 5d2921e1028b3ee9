//! The part of a session's `sql_mode` that changes how the server splits a
//! statement into tokens: quoting.
//!
//! Observed on MariaDB 10.11: `NO_BACKSLASH_ESCAPES` turns backslash escapes
//! in strings off, `ANSI_QUOTES` makes `"…"` an identifier, `MSSQL` makes
//! `[…]` an identifier (MySQL's `MSSQL` does not); `@@sql_mode` lists the
//! flags that the combination modes (`ANSI`, `MSSQL`, `ORACLE`, …) stand for.
//! A statement after `SET STATEMENT sql_mode=… FOR` is read under the
//! session's mode, not the statement's; stored routines and triggers run
//! under the mode they were created with and give the caller's back on
//! return, even when they `SET SESSION sql_mode`.

/// How a session's `sql_mode` makes the server read quotes. The default
/// (MariaDB's and MySQL's default `sql_mode`) is backslash escapes on,
/// `ANSI_QUOTES` off, no brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlMode {
    /// A backslash escapes the next byte in strings (no `NO_BACKSLASH_ESCAPES`).
    pub backslash_escapes: bool,
    /// `"…"` is an identifier (`ANSI_QUOTES`).
    pub ansi_quotes: bool,
    /// `[…]` is an identifier (MariaDB's `MSSQL`). Never set in a mode
    /// read from a session (see [`SqlMode::of_session`]); the guard reads
    /// text with `[` both ways when the mode is unknown.
    pub brackets: bool,
}

impl Default for SqlMode {
    fn default() -> Self {
        SqlMode {
            backslash_escapes: true,
            ansi_quotes: false,
            brackets: false,
        }
    }
}

/// The flags of MariaDB 10.11 and MySQL 5.7/8.0 that change nothing in how
/// the guard splits and reads a statement (besides `NO_BACKSLASH_ESCAPES`
/// and `ANSI_QUOTES`, which [`SqlMode`] models). `IGNORE_SPACE` and
/// `PIPES_AS_CONCAT` change what some tokens mean, not where they end; the
/// guard's rules do not depend on either. Left out on purpose: `MSSQL`
/// (brackets on MariaDB, not on MySQL), `ORACLE` (another grammar), and the
/// other compatibility modes (`DB2`, `MAXDB`, `POSTGRESQL`), as well as
/// any flag a newer server may add: a session with one of them has an
/// unknown mode.
const NEUTRAL_FLAGS: [&str; 29] = [
    "REAL_AS_FLOAT",
    "PIPES_AS_CONCAT",
    "IGNORE_SPACE",
    "IGNORE_BAD_TABLE_OPTIONS",
    "ONLY_FULL_GROUP_BY",
    "NO_UNSIGNED_SUBTRACTION",
    "NO_DIR_IN_CREATE",
    "NO_KEY_OPTIONS",
    "NO_TABLE_OPTIONS",
    "NO_FIELD_OPTIONS",
    "MYSQL323",
    "MYSQL40",
    "ANSI",
    "NO_AUTO_VALUE_ON_ZERO",
    "STRICT_TRANS_TABLES",
    "STRICT_ALL_TABLES",
    "NO_ZERO_IN_DATE",
    "NO_ZERO_DATE",
    "ALLOW_INVALID_DATES",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "TRADITIONAL",
    "NO_AUTO_CREATE_USER",
    "HIGH_NOT_PRECEDENCE",
    "NO_ENGINE_SUBSTITUTION",
    "PAD_CHAR_TO_FULL_LENGTH",
    "EMPTY_STRING_IS_NULL",
    "SIMULTANEOUS_ASSIGNMENT",
    "TIME_ROUND_FRACTIONAL",
    "TIME_TRUNCATE_FRACTIONAL",
];

impl SqlMode {
    /// The quoting of a session whose `@@SESSION.sql_mode` is `value`;
    /// `None` when it holds a flag the guard does not model (then the
    /// statement is read under every quoting mode, as when nothing is known).
    pub fn of_session(value: &str) -> Option<SqlMode> {
        let mut mode = SqlMode::default();
        for flag in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let flag = flag.to_ascii_uppercase();
            match flag.as_str() {
                "NO_BACKSLASH_ESCAPES" => mode.backslash_escapes = false,
                "ANSI_QUOTES" => mode.ansi_quotes = true,
                f if NEUTRAL_FLAGS.contains(&f) => {}
                _ => return None,
            }
        }
        Some(mode)
    }

    /// The quoting modes a session may be known to have, the default first:
    /// backslash escapes on and off, `ANSI_QUOTES` off and on (never brackets).
    pub(super) fn knowable() -> [SqlMode; 4] {
        let mode = |backslash_escapes, ansi_quotes| SqlMode {
            backslash_escapes,
            ansi_quotes,
            brackets: false,
        };
        [
            mode(true, false),
            mode(false, false),
            mode(true, true),
            mode(false, true),
        ]
    }

    /// For messages: what the mode does to quotes.
    pub fn describe(&self) -> String {
        let on_off = |on: bool| if on { "on" } else { "off" };
        format!(
            "backslash escapes {}, ANSI_QUOTES {}",
            on_off(self.backslash_escapes),
            on_off(self.ansi_quotes)
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::SqlMode;
    use crate::statement::guard::{GuardContext, StatementKind, check_statement, mode_dependent};

    const NO_ESCAPES: SqlMode = SqlMode {
        backslash_escapes: false,
        ansi_quotes: false,
        brackets: false,
    };
    const ANSI_QUOTES: SqlMode = SqlMode {
        backslash_escapes: true,
        ansi_quotes: true,
        brackets: false,
    };

    fn under(mode: Option<SqlMode>) -> GuardContext {
        GuardContext {
            sql_mode: mode,
            ..GuardContext::default()
        }
    }

    #[test]
    fn a_known_mode_reads_quotes_its_way_only() {
        let default = under(Some(SqlMode::default()));
        for sql in [
            "SELECT 'O\\'Brien'",
            "SELECT \"O\\\"Brien\"",
            "UPDATE users SET name = 'it\\'s' WHERE id = ?",
            // One string with backslash escapes: not a second statement.
            "SELECT 'a\\'; COMMIT; -- '",
        ] {
            assert!(check_statement(sql, under(None)).is_err(), "{sql}");
            assert!(mode_dependent(sql, under(None)).is_some(), "{sql}");
            let checked = check_statement(sql, default).unwrap();
            assert_eq!(checked.sql, sql);
            // Without backslash escapes the quote ends the string.
            assert!(
                check_statement(sql, under(Some(NO_ESCAPES))).is_err(),
                "{sql}"
            );
        }
        // Without backslash escapes, a trailing backslash is just a byte.
        let path = "SELECT 'C:\\', 'x'";
        assert!(check_statement(path, default).is_err());
        assert!(check_statement(path, under(Some(NO_ESCAPES))).is_ok());
        // Under ANSI_QUOTES, "…" is an identifier, without escapes.
        let column = "SELECT 1 AS \"x\\\"";
        assert!(check_statement(column, default).is_err());
        assert!(check_statement(column, under(Some(ANSI_QUOTES))).is_ok());
        // Refused whatever the mode: nothing to learn.
        assert!(mode_dependent("SELECT 'open", under(None)).is_none());
        assert!(mode_dependent("SELECT 'a\\'; COMMIT; -- '; COMMIT", under(None)).is_none());
    }

    #[test]
    fn what_may_change_the_mode_is_flagged() {
        let in_tx = GuardContext {
            in_transaction: true,
            sql_mode: Some(SqlMode::default()),
            ..GuardContext::default()
        };
        let flag = |sql| check_statement(sql, in_tx).unwrap().may_change_sql_mode;
        for sql in [
            "SET sql_mode = 'NO_BACKSLASH_ESCAPES'",
            "SET @@SESSION.sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
            "SET @x = 1",
            "SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT 1",
            "CALL p()",
            "DO 1",
            "/*!40101 SET NAMES utf8mb4 */",
        ] {
            assert!(flag(sql), "{sql}");
        }
        for sql in [
            "SELECT @@sql_mode",
            "UPDATE t SET a = 'x' WHERE id = 1",
            "INSERT INTO t SET a = 1",
            "SAVEPOINT s",
            "ROLLBACK TO SAVEPOINT s",
            "CREATE TEMPORARY TABLE x (a INT)",
        ] {
            assert!(!flag(sql), "{sql}");
        }
        let dependent = mode_dependent("SET @x = 'O\\'Brien'", under(None)).unwrap();
        assert!(dependent.may_change_sql_mode && !dependent.calls);
        let dependent = mode_dependent("CALL p('O\\'Brien')", under(None)).unwrap();
        assert!(dependent.may_change_sql_mode && dependent.calls);
    }

    #[test]
    fn sessions_modes_are_read_from_their_flags() {
        let default = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION";
        assert_eq!(SqlMode::of_session(default), Some(SqlMode::default()));
        assert_eq!(SqlMode::of_session(""), Some(SqlMode::default()));
        let no_escapes = SqlMode::of_session("no_backslash_escapes,STRICT_ALL_TABLES").unwrap();
        assert!(!no_escapes.backslash_escapes && !no_escapes.ansi_quotes);
        // `SET sql_mode = 'ANSI'` as MariaDB 10.11 reports it.
        let ansi =
            SqlMode::of_session("REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI")
                .unwrap();
        assert!(ansi.backslash_escapes && ansi.ansi_quotes && !ansi.brackets);
        // Modes the guard does not model: unknown.
        for value in [
            "PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,MSSQL,NO_KEY_OPTIONS,NO_TABLE_OPTIONS,NO_FIELD_OPTIONS",
            "PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ORACLE,NO_KEY_OPTIONS",
            "STRICT_TRANS_TABLES,SOME_FUTURE_FLAG",
        ] {
            assert_eq!(SqlMode::of_session(value), None, "{value}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Never weaker than an unknown mode: what every reading accepts,
        /// each known mode accepts as the same statement; what no knowable
        /// reading accepts, no known mode does.
        #[test]
        fn a_known_mode_is_one_of_the_readings(parts in proptest::collection::vec(prop_oneof![
            Just("SELECT"), Just("COMMIT"), Just("SET"), Just("sql_mode"), Just("="), Just("1"),
            Just("'"), Just("\""), Just("`"), Just("\\"), Just("/*"), Just("*/"), Just("--"),
            Just("#"), Just("\n"), Just(" "), Just(";"), Just("("), Just(")"), Just("?"),
            Just("FOR"), Just("STATEMENT"), Just("CALL"), Just("INTO"), Just("OUTFILE"),
            Just("["), Just("]"),
        ], 0..20), in_transaction: bool, read_only: bool) {
            let sql: String = parts.concat();
            let context = GuardContext { in_transaction, read_only, ..GuardContext::default() };
            let unknown = check_statement(&sql, context);
            let dependent = mode_dependent(&sql, context);
            for mode in SqlMode::knowable() {
                let known = check_statement(&sql, GuardContext { sql_mode: Some(mode), ..context });
                if let Ok(all) = &unknown {
                    let one = known.as_ref().expect("accepted by every reading");
                    prop_assert_eq!((one.sql, one.kind), (all.sql, all.kind));
                    prop_assert!(!one.may_change_identity || all.may_change_identity);
                    prop_assert!(!one.may_change_sql_mode || all.may_change_sql_mode);
                }
                if let Ok(one) = &known && unknown.is_err() {
                    let dependent = dependent.expect("some reading accepts it");
                    prop_assert!(!one.may_change_identity || dependent.may_change_identity);
                    prop_assert!(!one.may_change_sql_mode || dependent.may_change_sql_mode);
                    prop_assert!(one.kind != StatementKind::Call || dependent.calls);
                }
                if dependent.is_none() {
                    prop_assert!(known.is_err());
                }
            }
        }
    }
}

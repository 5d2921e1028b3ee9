//! The SQL guard: refuses statements that would break the gateway's pinning of
//! transactions to connections, end a transaction behind its back, or reach
//! what clients are not given (server administration, accounts, files).
//!
//! It is not a SQL parser. It lexes like the server ([`lexer`]) — blanks,
//! comments, strings, quoted identifiers — and reads the leading keywords
//! ([`rules`]). Where the server could read the text in a way the guard
//! cannot tell (executable comments `/*! … */`, unterminated comments or
//! strings, a lone `\r` in a line comment) the text is refused. When the
//! session's `sql_mode` is not known ([`GuardContext::sql_mode`]), text with
//! a backslash, a `"` or a `[` is lexed under every quoting mode (backslash
//! escapes on and off, `ANSI_QUOTES` and `MSSQL` brackets on and off) and
//! refused unless every reading accepts it the same way; when it is known,
//! under that mode only. A statement that some readings accept can be checked
//! again once the caller has learned the mode ([`mode_dependent`]). The
//! client character set must stay UTF-8 (where no byte of
//! a character can pass for a quote or a blank): SET NAMES, SET CHARACTER SET
//! and character_set_client accept utf8mb4/utf8mb3/utf8 only.
//!
//! Safety does not rest on it alone: statements run as prepared statements,
//! which the server refuses to stack, and every connection is reset before
//! another client gets it.
use crate::errors::GatewayError;

mod cache;
#[cfg(test)]
pub(crate) mod corpus;
mod insert_values;
mod lexer;
mod reuse;
mod rules;
mod sql_mode;
#[cfg(test)]
mod tests;

pub use insert_values::values_row;
use lexer::{Mode, Token};
pub use sql_mode::SqlMode;

/// Where and for whom a statement will run, and how the server will read it:
/// the guard's verdict depends on nothing else than this and the text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GuardContext {
    /// The statement runs inside an open transaction: statements that commit
    /// implicitly are refused ([`GatewayError::ImplicitCommit`]).
    pub in_transaction: bool,
    /// The caller is read-only: only reads and SET of session variables pass
    /// ([`GatewayError::ReadOnlyStatement`]).
    pub read_only: bool,
    /// The caller has the schema role: it may install code (procedures,
    /// functions, triggers, events, definer views), send their compound
    /// `BEGIN … END` bodies, and PREPARE/EXECUTE.
    pub schema: bool,
    /// The quoting of the session's `sql_mode` when the statement will be
    /// read, if known for sure; `None` (the default) reads the text under
    /// every quoting mode and refuses it unless all agree.
    pub sql_mode: Option<SqlMode>,
}

/// What the guard learned about an accepted statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// SELECT, WITH … SELECT, VALUES, TABLE, SHOW, DESCRIBE, EXPLAIN, HELP.
    Read,
    /// INSERT, UPDATE, DELETE, REPLACE.
    Write,
    /// CREATE, ALTER, DROP, RENAME, TRUNCATE.
    Ddl,
    /// CALL of a stored procedure (which may do anything, COMMIT included).
    Call,
    /// SET of session variables.
    Set,
    /// Anything else (DO, CHECK TABLE, …, and text the server will refuse).
    Other,
}

/// An accepted statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked<'a> {
    /// The text without trailing `;` and blanks.
    pub sql: &'a str,
    /// What kind of statement it is.
    pub kind: StatementKind,
    /// True when a word USE, ROLE, CALL, EXECUTE or PREPARE appears anywhere
    /// outside string literals — comment bodies included (read as code). The
    /// gateway then restores the connection's default database and role after
    /// the call (defence in depth in case the guard missed something).
    pub may_change_identity: bool,
    /// True when the statement is a plain read whose text shows it cannot
    /// change the session (no `@`, no `INTO`, no locking clause, only
    /// built-in functions without side effects; see `reuse`): its
    /// connection may skip the reset if the server agrees.
    pub plain_read: bool,
    /// True when the statement may change the session's `sql_mode`: a
    /// SET (also `SET STATEMENT … FOR`), a CALL, anything but a read, a
    /// write, DDL or a savepoint, or a word of
    /// [`may_change_identity`](Checked::may_change_identity) (EXECUTE,
    /// PREPARE). Reads, writes and DDL cannot: stored functions and
    /// triggers give the caller's mode back on return.
    pub may_change_sql_mode: bool,
}

/// What any reading that accepts a statement may do, for a statement that
/// reads differently depending on the session's `sql_mode` (see
/// [`mode_dependent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeDependent {
    /// Some accepting reading is a CALL.
    pub calls: bool,
    /// See [`Checked::may_change_identity`].
    pub may_change_identity: bool,
    /// See [`Checked::may_change_sql_mode`].
    pub may_change_sql_mode: bool,
}

/// The quoting modes under which `text` is read for `context`: the known
/// one, or every one a session's `sql_mode` can select that changes how
/// `text` reads, the default first.
fn modes(text: &str, context: GuardContext) -> Vec<Mode> {
    if let Some(known) = context.sql_mode {
        return vec![known];
    }
    let quotes: &[bool] = if text.contains(['\\', '"']) {
        &[false, true]
    } else {
        &[false]
    };
    let brackets: &[bool] = if text.contains('[') {
        &[false, true]
    } else {
        &[false]
    };
    let mut modes = Vec::new();
    for &brackets in brackets {
        for &ansi_quotes in quotes {
            for &no_backslash_escapes in quotes {
                modes.push(Mode {
                    backslash_escapes: !no_backslash_escapes,
                    ansi_quotes,
                    brackets,
                });
            }
        }
    }
    modes
}

/// Checks one statement for a caller in `context`.
///
/// Refusals, when several apply, in this order:
/// [`GatewayError::StatementNotAllowed`] (administration, accounts, files;
/// then installing code, unless the caller has the schema role),
/// [`GatewayError::InvalidRequest`] (what the text is or how it is written:
/// several statements, transaction control, USE, LOCK, PREPARE, HANDLER,
/// executable comments, …), [`GatewayError::ReadOnlyStatement`] (not a read,
/// for read-only callers), [`GatewayError::ImplicitCommit`] (in a transaction).
pub fn check_statement(sql: &str, context: GuardContext) -> Result<Checked<'_>, GatewayError> {
    if sql.contains('\0') {
        return Err(GatewayError::InvalidRequest(
            "sql contains a NUL byte: send binary data as a parameter".into(),
        ));
    }
    if let Some(body) = version_comment_body(sql) {
        // The server runs the body: check it as the statement.
        let checked = check_statement(body, context)?;
        return Ok(Checked {
            sql: sql
                .trim_end_matches(|c: char| c.is_ascii() && (lexer::is_blank(c as u8) || c == ';')),
            // Never reused without a reset (the reuse classifier reads plain text).
            plain_read: false,
            ..checked
        });
    }
    let mut accepted: Option<Checked<'_>> = None;
    for mode in modes(sql, context) {
        let checked = check_in_mode(sql, context, mode)?;
        match &mut accepted {
            None => accepted = Some(checked),
            Some(first) if first.sql == checked.sql && first.kind == checked.kind => {
                first.may_change_identity |= checked.may_change_identity;
                first.may_change_sql_mode |= checked.may_change_sql_mode;
                first.plain_read &= checked.plain_read;
            }
            Some(_) => {
                return Err(GatewayError::InvalidRequest(
                    "the statement reads differently depending on the session's sql_mode (backslash escapes in strings, ANSI_QUOTES, MSSQL brackets): write quotes so that it does not (double a quote instead of escaping it with a backslash)".into(),
                ));
            }
        }
    }
    Ok(accepted.expect("at least one mode"))
}

/// For a statement that [`check_statement`] refuses when the session's
/// `sql_mode` is not known (`context.sql_mode` is `None`): when some quoting
/// mode a session may be known to have ([`SqlMode::of_session`]) accepts it,
/// what those readings may do. The caller then learns the session's mode and
/// checks the statement again under it before sending it. `None` when no
/// such reading accepts it (the refusal stands whatever the mode).
pub fn mode_dependent(sql: &str, context: GuardContext) -> Option<ModeDependent> {
    let mut found: Option<ModeDependent> = None;
    for mode in SqlMode::knowable() {
        let known = GuardContext {
            sql_mode: Some(mode),
            ..context
        };
        let Ok(checked) = check_statement(sql, known) else {
            continue;
        };
        let reading = found.get_or_insert(ModeDependent {
            calls: false,
            may_change_identity: false,
            may_change_sql_mode: false,
        });
        reading.calls |= checked.kind == StatementKind::Call;
        reading.may_change_identity |= checked.may_change_identity;
        reading.may_change_sql_mode |= checked.may_change_sql_mode;
    }
    found
}

/// [`check_statement`], answered from the process's cache of verdicts on
/// accepted texts when this text was accepted in this context before (see
/// [`cache`]).
pub fn check_statement_cached(
    sql: &str,
    context: GuardContext,
) -> Result<Checked<'_>, GatewayError> {
    cache::VERDICTS.check(sql, context, check_statement)
}

/// Bounds the process's cache of verdicts to `bytes` (0 turns it off);
/// [`cache::DEFAULT_BYTES`] until called.
pub fn set_verdict_cache_size(bytes: usize) {
    cache::VERDICTS.set_capacity(bytes);
}

/// The oldest server version the gateway serves (MySQL 5.7; every MariaDB
/// from 10.0 is numbered 100000 and up): an executable comment for a
/// version up to this one runs on every server the gateway may talk to.
const OLDEST_SERVER: u32 = 50700;

/// When `sql` is a single executable comment whose body every server runs
/// — `/*! … */` or `/*!NNNNN … */` with NNNNN up to [`OLDEST_SERVER`], as
/// mysqldump writes `/*!40101 SET NAMES utf8mb4 */` — its body. The body
/// may hold no `/*` or `*/` (the first `*/` ends the comment), and nothing
/// but blanks and `;` may follow it.
fn version_comment_body(sql: &str) -> Option<&str> {
    let text = sql.trim_start_matches(|c: char| c.is_ascii() && lexer::is_blank(c as u8));
    let text =
        text.trim_end_matches(|c: char| c.is_ascii() && (lexer::is_blank(c as u8) || c == ';'));
    let rest = text.strip_prefix("/*!")?;
    let body = rest.strip_suffix("*/")?;
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    let version_runs = match digits {
        0 => true,
        5 => body[..5].parse::<u32>().is_ok_and(|v| v <= OLDEST_SERVER),
        _ => false,
    };
    let body = &body[digits..];
    let plain = !body.contains("/*") && !body.contains("*/");
    (version_runs && plain && !body.trim().is_empty()).then_some(body)
}

/// The byte offsets of the `?` placeholders of a statement [`check_statement`]
/// accepted, read under `sql_mode` when known, else when every quoting mode
/// reads them at the same places (else `None`: where the server's
/// `sql_mode` puts them cannot be told).
pub fn placeholders(sql: &str, sql_mode: Option<SqlMode>) -> Option<Vec<usize>> {
    let context = GuardContext {
        sql_mode,
        ..GuardContext::default()
    };
    let mut agreed: Option<Vec<usize>> = None;
    for mode in modes(sql, context) {
        let lexed = lexer::lex(sql, mode).ok()?;
        let offsets: Vec<usize> = lexed
            .tokens
            .iter()
            .filter(|token| token.is_punct("?"))
            .map(|token| token.offset)
            .collect();
        match &agreed {
            None => agreed = Some(offsets),
            Some(first) if *first == offsets => {}
            Some(_) => return None,
        }
    }
    agreed
}

fn refuse(message: &str) -> GatewayError {
    GatewayError::InvalidRequest(message.to_string())
}

fn check_in_mode(
    sql: &str,
    context: GuardContext,
    mode: Mode,
) -> Result<Checked<'_>, GatewayError> {
    let lexed = lexer::lex(sql, mode)?;
    let tokens = &lexed.tokens;
    let semicolon = tokens.iter().position(|t| t.is_punct(";"));
    let statement: &[Token] = &tokens[..semicolon.unwrap_or(tokens.len())];
    if statement.is_empty() {
        return Err(refuse("sql is empty: send one SQL statement"));
    }
    // A stored program's compound body (schema role only) holds `;`s: the
    // statement then runs to the last token that is not `;` (the server,
    // reading a prepared statement, refuses a second one after it).
    let whole = tokens
        .iter()
        .rposition(|t| !t.is_punct(";"))
        .map_or(0, |last| last + 1);
    let head = rules::analyze(statement);
    let compound =
        context.schema && head.has_body && tokens[..whole].iter().any(|t| t.is_punct(";"));
    let analysis = if compound {
        rules::analyze(&tokens[..whole])
    } else {
        head
    };
    if let Some(message) = analysis.not_allowed {
        return Err(GatewayError::StatementNotAllowed(message));
    }
    if !context.schema
        && let Some(message) = &analysis.installs_code
    {
        return Err(GatewayError::StatementNotAllowed(message.clone()));
    }
    let mut end = sql.len();
    if compound {
        if let Some(after) = tokens.get(whole) {
            end = after.offset;
        }
    } else if let Some(semicolon) = semicolon {
        // A `;` followed by anything but more `;` starts a second statement.
        if tokens[semicolon..].iter().any(|t| !t.is_punct(";")) {
            return Err(refuse(
                "only one statement per call is allowed (found `;` followed by more SQL); use ExecuteBatch to run several (a principal with the schema role may send a procedure's, function's, trigger's or event's BEGIN … END body)",
            ));
        }
        end = tokens[semicolon].offset;
    }
    if !context.schema
        && let Some(message) = analysis.schema_only
    {
        return Err(GatewayError::InvalidRequest(message));
    }
    if let Some(message) = analysis.invalid {
        return Err(GatewayError::InvalidRequest(message));
    }
    if context.read_only {
        if analysis.leaves_read_only {
            return Err(refuse(
                "a read-only principal cannot change the transaction access mode",
            ));
        }
        if !analysis.read {
            return Err(GatewayError::ReadOnlyStatement(format!(
                "{} is not allowed for a read-only principal: it may run only reads (SELECT, WITH … SELECT, VALUES, TABLE, SHOW, DESCRIBE, EXPLAIN, HELP) and SET of session variables",
                analysis.what
            )));
        }
    }
    if analysis.savepoint && !context.in_transaction {
        return Err(refuse(
            "SAVEPOINT, RELEASE SAVEPOINT and ROLLBACK TO SAVEPOINT work inside a transaction only: begin one (Begin) and send them in it",
        ));
    }
    if let (true, Some(what)) = (context.in_transaction, analysis.commits) {
        return Err(GatewayError::ImplicitCommit(format!(
            "{what} commits the open transaction implicitly in MySQL, so it is not allowed inside a transaction: run it as an autocommit call"
        )));
    }
    // `SET STATEMENT … FOR <read>` is a read; it may still carry sql_mode.
    let starts_with_set = statement[0].word() == Some("SET");
    let keeps_sql_mode = matches!(
        analysis.kind,
        StatementKind::Read | StatementKind::Write | StatementKind::Ddl
    ) || analysis.savepoint;
    Ok(Checked {
        sql: sql[..end].trim_end_matches(|c: char| c.is_ascii() && lexer::is_blank(c as u8)),
        kind: analysis.kind,
        may_change_identity: lexed.may_change_identity,
        may_change_sql_mode: starts_with_set || !keeps_sql_mode || lexed.may_change_identity,
        plain_read: analysis.kind == StatementKind::Read
            && !lexed.may_change_identity
            && reuse::is_plain_read(statement),
    })
}

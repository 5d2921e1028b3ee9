//! What the gateway knows of one session's `sql_mode`, so that a statement
//! that reads differently under different modes (`'O\'Brien'`) is checked
//! under the one the server will read it with.
//!
//! A session takes the server's global `sql_mode` when it is opened and at
//! every COM_RESET_CONNECTION, and an administrator may change that at any
//! time, so no value read once holds for later sessions. Nor does the
//! server report it: session tracking of `sql_mode` is off by default,
//! turning it on does not report the current value, and after
//! `SET STATEMENT sql_mode=… FOR` it reports the statement's mode, not the
//! one the session keeps. So the gateway reads `@@SESSION.sql_mode` on the
//! connection itself, only when a statement needs it (a round trip that
//! statements which read the same under every mode never pay), remembers it
//! for the rest of the session's life (a transaction), and forgets it before
//! sending anything that may change it ([`Checked::may_change_sql_mode`]).
//! A reset ends the session and its memory with it; a reset that the pool
//! defers to the connection's next command is sent before this read.
//!
//! Reading the mode is a statement of its own, which sets `FOUND_ROWS()`,
//! `ROW_COUNT()` and the diagnostics that the next statement may read. Before
//! a session's first client statement those are not the client's (the
//! gateway gives such a statement a fresh session's values, see
//! `Lease::before_statement`): the read is followed, in the same round trip,
//! by a read that leaves them as a fresh session has them. Later in a
//! transaction they are the client's previous statement's: a statement that
//! may read them is then not preceded by a read of the mode (its readings
//! must all agree, as when the mode cannot be known).
//!
//! [`Checked::may_change_sql_mode`]: super::guard::Checked::may_change_sql_mode
use std::sync::atomic::{AtomicU8, Ordering};

use mysql_async::{Conn, prelude::Queryable};

use super::guard::SqlMode;
use crate::errors::GatewayError;

/// The `sql_mode` of one session as far as the gateway knows it: unknown
/// until read, forgotten before anything that may change it; and whether a
/// client statement ran in the session yet. Lives exactly as long as the
/// session (a transaction's; an autocommit call keeps none).
#[derive(Debug, Default)]
pub struct SessionSqlMode(AtomicU8);

/// Set in the stored byte when a mode is known.
const KNOWN: u8 = 1;
const BACKSLASH_ESCAPES: u8 = 2;
const ANSI_QUOTES: u8 = 4;
/// Set once a client statement was sent in the session.
const USED: u8 = 8;

/// Reads the session's mode, then leaves `FOUND_ROWS()` 0 and `ROW_COUNT()`
/// -1, as in a fresh session (the driver always allows several statements
/// in a text query; the second result is read and dropped).
const READ_LEAVING_A_FRESH_SESSION: &str =
    "SELECT @@SESSION.sql_mode; SELECT 1 FROM DUAL WHERE FALSE";

impl SessionSqlMode {
    /// The session's quoting, if known.
    pub fn known(&self) -> Option<SqlMode> {
        let bits = self.0.load(Ordering::SeqCst);
        (bits & KNOWN != 0).then_some(SqlMode {
            backslash_escapes: bits & BACKSLASH_ESCAPES != 0,
            ansi_quotes: bits & ANSI_QUOTES != 0,
            brackets: false,
        })
    }

    /// Remembers the session's quoting, as just read from the server.
    fn remember(&self, mode: SqlMode) {
        debug_assert!(!mode.brackets, "a session's known mode has no brackets");
        let mut bits = KNOWN | (self.0.load(Ordering::SeqCst) & USED);
        if mode.backslash_escapes {
            bits |= BACKSLASH_ESCAPES;
        }
        if mode.ansi_quotes {
            bits |= ANSI_QUOTES;
        }
        self.0.store(bits, Ordering::SeqCst);
    }

    /// Forgets it: a statement that may change it is about to be sent.
    pub fn forget(&self) {
        self.0.fetch_and(USED, Ordering::SeqCst);
    }

    /// Notes that a client statement is about to be sent in the session.
    pub fn note_statement(&self) {
        self.0.fetch_or(USED, Ordering::SeqCst);
    }

    /// True until a client statement was sent in the session.
    fn pristine(&self) -> bool {
        self.0.load(Ordering::SeqCst) & USED == 0
    }
}

/// The quoting of the session on `conn` now: what `memory` knows, else read
/// from the server (and remembered in `memory`). `None` when the session's
/// mode holds a flag the guard does not model (`MSSQL`, `ORACLE`, …), or
/// when `reads_leftovers` (the statement may read what the previous one
/// left) after a client statement ran in the session, which the read would
/// overwrite.
pub(super) async fn current(
    conn: &mut Conn,
    memory: Option<&SessionSqlMode>,
    reads_leftovers: bool,
) -> Result<Option<SqlMode>, GatewayError> {
    if let Some(known) = memory.and_then(SessionSqlMode::known) {
        return Ok(Some(known));
    }
    let read = match memory {
        Some(memory) if !memory.pristine() => {
            if reads_leftovers {
                return Ok(None);
            }
            "SELECT @@SESSION.sql_mode"
        }
        _ => READ_LEAVING_A_FRESH_SESSION,
    };
    let value: Option<String> = conn.query_first(read).await?;
    let mode = value.as_deref().and_then(SqlMode::of_session);
    if let (Some(mode), Some(memory)) = (mode, memory) {
        memory.remember(mode);
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_keeps_a_mode_until_forgotten() {
        let memory = SessionSqlMode::default();
        assert_eq!(memory.known(), None);
        for mode in [
            SqlMode::default(),
            SqlMode {
                backslash_escapes: false,
                ansi_quotes: true,
                brackets: false,
            },
        ] {
            memory.remember(mode);
            assert_eq!(memory.known(), Some(mode));
        }
        assert!(memory.pristine());
        memory.note_statement();
        assert!(!memory.pristine());
        assert!(memory.known().is_some());
        memory.forget();
        assert_eq!(memory.known(), None);
        assert!(!memory.pristine());
        memory.remember(SqlMode::default());
        assert!(!memory.pristine());
    }
}

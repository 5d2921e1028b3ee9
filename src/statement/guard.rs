//! The SQL guard: refuses statements that would break the gateway's pinning of
//! transactions to connections.
//!
//! It is not a SQL parser. It reads just enough tokens (skipping strings,
//! quoted identifiers and comments) to see what kind of statement this is and
//! whether more than one statement was sent. Safety does not rest on it alone:
//! statements run as prepared statements, which the server refuses to stack,
//! and every connection is reset before another client gets it.
use crate::errors::GatewayError;

/// Checks one statement; returns its text without trailing `;` and blanks.
pub fn check_statement(sql: &str) -> Result<&str, GatewayError> {
    let tokens = tokenize(sql);
    let Some(first) = tokens.first() else {
        return Err(refuse("sql is empty: send one SQL statement"));
    };
    // A `;` followed by anything but more `;` starts a second statement.
    let mut end = sql.len();
    if let Some(semicolon) = tokens.iter().position(|t| t.text == ";") {
        if tokens[semicolon..].iter().any(|t| t.text != ";") {
            return Err(refuse(
                "only one statement per call is allowed (found `;` followed by more SQL); use ExecuteBatch to run several",
            ));
        }
        end = tokens[semicolon].offset;
    }
    if first.text == ";" {
        return Err(refuse("sql is empty: send one SQL statement"));
    }
    let words: Vec<String> = tokens
        .iter()
        .take_while(|t| t.text != ";")
        .map(|t| t.text.to_ascii_uppercase())
        .collect();
    check_words(&words)?;
    Ok(sql[..end].trim_end())
}

/// Refuses what would let a read-only caller out of read-only mode:
/// `SET [SESSION] TRANSACTION ...`, `SET tx_read_only`/`transaction_read_only`
/// and `SET STATEMENT ... FOR` (which can change them for one statement).
pub fn check_read_only(sql: &str) -> Result<(), GatewayError> {
    let tokens = tokenize(sql);
    let mut words = tokens.iter().map(|t| t.text.to_ascii_uppercase());
    if words.next().as_deref() != Some("SET") {
        return Ok(());
    }
    let escapes = words.any(|word| {
        let name = word
            .trim_start_matches('@')
            .trim_start_matches("SESSION.")
            .trim_start_matches("LOCAL.")
            .trim_start_matches("GLOBAL.");
        matches!(
            name,
            "TRANSACTION" | "STATEMENT" | "TX_READ_ONLY" | "TRANSACTION_READ_ONLY"
        )
    });
    if escapes {
        return Err(refuse(
            "a read-only principal cannot change the transaction access mode",
        ));
    }
    Ok(())
}

fn refuse(message: &str) -> GatewayError {
    GatewayError::InvalidRequest(message.to_string())
}

/// Refuses transaction control and connection-state statements.
fn check_words(words: &[String]) -> Result<(), GatewayError> {
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match word(0) {
        "BEGIN" | "COMMIT" | "XA" | "SAVEPOINT" | "RELEASE" => Err(transaction_control()),
        "START" if word(1) == "TRANSACTION" => Err(transaction_control()),
        "ROLLBACK" => Err(transaction_control()),
        "LOCK" | "UNLOCK" => Err(refuse(
            "LOCK TABLES and UNLOCK TABLES are not allowed: they commit implicitly; use SELECT ... FOR UPDATE inside a transaction",
        )),
        "USE" => Err(refuse(
            "USE is not allowed: the gateway serves one database; qualify table names as db.table instead",
        )),
        "PREPARE" | "EXECUTE" | "DEALLOCATE" => Err(refuse(
            "server-side PREPARE/EXECUTE is not allowed: send the statement with `?` parameters instead",
        )),
        "LOAD" if words.iter().any(|w| w == "LOCAL") => Err(refuse(
            "LOAD DATA LOCAL INFILE is not allowed: the gateway does not read client files",
        )),
        "SET" => check_set(words),
        _ => Ok(()),
    }
}

fn transaction_control() -> GatewayError {
    refuse(
        "transaction-control statements (BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, XA) are not allowed: use the Begin, Commit and Rollback RPCs",
    )
}

/// `SET autocommit`, `SET completion_type` and `SET STATEMENT ... FOR <stmt>`.
fn check_set(words: &[String]) -> Result<(), GatewayError> {
    for (i, word) in words.iter().enumerate() {
        let name = word
            .trim_start_matches('@')
            .trim_start_matches("SESSION.")
            .trim_start_matches("LOCAL.")
            .trim_start_matches("GLOBAL.");
        if matches!(name, "AUTOCOMMIT" | "COMPLETION_TYPE") {
            return Err(refuse(
                "changing autocommit or completion_type is not allowed: use the Begin, Commit and Rollback RPCs",
            ));
        }
        if word == "FOR" && words.get(1).map(String::as_str) == Some("STATEMENT") {
            return check_words(&words[i + 1..]);
        }
    }
    Ok(())
}

/// A significant token: a word, a quoted item, or one punctuation character.
struct Token<'a> {
    text: &'a str,
    offset: usize,
}

/// Splits SQL into tokens, skipping blanks and comments. MySQL's executable
/// comments (`/*! ... */`, `/*M! ... */`) are read as SQL, because the server runs them.
fn tokenize(sql: &str) -> Vec<Token<'_>> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b if b.is_ascii_whitespace() => i += 1,
            b'#' => i = skip_line(bytes, i),
            b'-' if bytes.get(i + 1) == Some(&b'-')
                && bytes.get(i + 2).is_none_or(|b| b.is_ascii_whitespace()) =>
            {
                i = skip_line(bytes, i)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let executable = matches!(bytes.get(i + 2), Some(b'!'))
                    || (bytes.get(i + 2) == Some(&b'M') && bytes.get(i + 3) == Some(&b'!'));
                if executable {
                    // Skip the opener and the optional version number; the body is SQL.
                    i += if bytes[i + 2] == b'M' { 4 } else { 3 };
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = find(bytes, i + 2, b"*/").map_or(bytes.len(), |end| end + 2);
                }
            }
            b'*' if bytes.get(i + 1) == Some(&b'/') => i += 2, // end of an executable comment
            b'\'' | b'"' | b'`' => {
                i = skip_quoted(bytes, i);
                tokens.push(Token {
                    text: &sql[start..i],
                    offset: start,
                });
            }
            b if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                tokens.push(Token {
                    text: &sql[start..i],
                    offset: start,
                });
            }
            _ => {
                // One punctuation character (or one whole UTF-8 character).
                i += sql[i..].chars().next().map_or(1, char::len_utf8);
                tokens.push(Token {
                    text: &sql[start..i],
                    offset: start,
                });
            }
        }
    }
    tokens
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'@' | b'.') || b >= 0x80
}

fn skip_line(bytes: &[u8], from: usize) -> usize {
    find(bytes, from, b"\n").map_or(bytes.len(), |end| end + 1)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Skips a quoted string or identifier starting at `from`: doubled quotes and
/// (outside backquotes) backslash escapes stay inside.
fn skip_quoted(bytes: &[u8], from: usize) -> usize {
    let quote = bytes[from];
    let mut i = from + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::check_statement;

    fn refused(sql: &str) -> bool {
        check_statement(sql).is_err()
    }

    #[test]
    fn ordinary_statements_pass() {
        for sql in [
            "SELECT 1",
            "select * from t where name = 'a;b' and x = \"c;d\"",
            "INSERT INTO `odd;name` VALUES (?, ?)",
            "UPDATE t SET v = v + 1 -- comment; with semicolon\n WHERE id = 1",
            "SELECT 'it''s; fine', 'back\\'slash;'",
            "SET @x = 1",
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES'",
            "/* leading; comment */ SELECT 2",
            "SELECT 1 # trailing; comment",
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "SELECT 'ROLLBACK'",
        ] {
            assert!(!refused(sql), "should pass: {sql}");
        }
    }

    #[test]
    fn read_only_callers_cannot_leave_read_only_mode() {
        use super::check_read_only;
        for sql in [
            "SET SESSION TRANSACTION READ WRITE",
            "set transaction read write",
            "SET @@session.tx_read_only = 0",
            "SET transaction_read_only = OFF",
            "SET STATEMENT tx_read_only=0 FOR UPDATE t SET x = 1",
        ] {
            assert!(check_read_only(sql).is_err(), "{sql}");
        }
        for sql in ["SELECT 1", "SET @x = 1", "SET SESSION sql_mode = ''"] {
            assert!(check_read_only(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn trailing_semicolons_are_trimmed() {
        assert_eq!(check_statement("SELECT 1 ;  ; ").unwrap(), "SELECT 1");
        assert_eq!(check_statement("SELECT ';'").unwrap(), "SELECT ';'");
    }

    #[test]
    fn stacked_and_control_statements_are_refused() {
        for sql in [
            "",
            "   ",
            "-- only a comment",
            ";",
            "SELECT 1; SELECT 2",
            "SELECT 1;DROP TABLE t",
            "SELECT 1 /*! ; DROP TABLE t */",
            "BEGIN",
            "begin work",
            "START TRANSACTION READ ONLY",
            "COMMIT",
            "ROLLBACK",
            "  /* x */ commit",
            "SAVEPOINT a",
            "XA START 'x'",
            "SET autocommit = 0",
            "SET @@autocommit=0",
            "set session autocommit=1",
            "SET @@session.autocommit = 0",
            "SET x = 1, autocommit = 0",
            "SET STATEMENT max_statement_time=1 FOR COMMIT",
            "LOCK TABLES t WRITE",
            "UNLOCK TABLES",
            "USE mysql",
            "PREPARE s FROM 'SELECT 1'",
            "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t",
            "/*!40101 COMMIT */",
        ] {
            assert!(refused(sql), "should be refused: {sql:?}");
        }
    }
}

//! The outcomes table and its view: their DDL and the statements the
//! gateway runs on them.
//!
//! Every record is written and read through the view
//! `sqlgate_outcomes_mine`, which shows and accepts (WITH CHECK OPTION) only
//! the rows of the database account the session logged in as (the user part
//! of `USER()`, never the host, so that every instance of a fleet names the
//! same account). A principal mapped to an account of its own is granted
//! SELECT and INSERT on the view only: it can neither read nor forge another
//! account's records, even with SQL of its own. Purging deletes from the
//! table itself, as the main account.

/// The table's name, in the schema the operator names (--request-id-schema).
pub const TABLE: &str = "sqlgate_outcomes";
/// The view the records are written and read through.
pub const VIEW: &str = "sqlgate_outcomes_mine";

/// The session's account name: `USER()` without its `@host`.
const ACCOUNT: &str =
    "LEFT(USER(), CHAR_LENGTH(USER()) - CHAR_LENGTH(SUBSTRING_INDEX(USER(), '@', -1)) - 1)";

/// Records purged per statement: small batches, off the hot path.
pub const PURGE_BATCH: u32 = 1000;

/// `schema` as a quoted identifier.
pub fn quoted(schema: &str) -> String {
    format!("`{}`", schema.replace('`', "``"))
}

/// The statements that create the table and the view in `schema`, if they
/// do not exist; the view's definer is `definer` (`'user'@'host'`) when
/// given, else the account that runs them.
pub fn create_statements(schema: &str, definer: Option<&str>) -> [String; 2] {
    let schema = quoted(schema);
    let definer = definer
        .map(|d| format!("DEFINER = {d} "))
        .unwrap_or_default();
    [
        format!(
            "CREATE TABLE IF NOT EXISTS {schema}.`{TABLE}` (\
             account VARCHAR(128) NOT NULL COMMENT 'database account that wrote it',\
             principal VARBINARY(1024) NOT NULL COMMENT 'the principal (sha256: and a digest when longer)',\
             request_id VARBINARY(255) NOT NULL COMMENT 'the client''s request_id',\
             fingerprint BINARY(32) NOT NULL COMMENT 'SHA-256 of what the call ran',\
             rows_affected BIGINT UNSIGNED NOT NULL,\
             last_insert_id BIGINT UNSIGNED NOT NULL,\
             statement_results BLOB NULL COMMENT 'a batch''s (rows_affected, last_insert_id) per statement',\
             created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\
             PRIMARY KEY (account, principal, request_id),\
             KEY by_age (created_at) \
             ) ENGINE = InnoDB COMMENT 'sqlgate: outcomes of writes with a request_id'"
        ),
        format!(
            "CREATE {definer}SQL SECURITY DEFINER VIEW IF NOT EXISTS {schema}.`{VIEW}` AS \
             SELECT * FROM {schema}.`{TABLE}` WHERE account = {ACCOUNT} WITH CHECK OPTION"
        ),
    ]
}

/// Reads the record of a principal and request id (parameters), as the
/// session's account. `locking`: the latest committed version, waiting for
/// a transaction that holds it (after a duplicate key).
pub fn select(schema: &str, locking: bool) -> String {
    format!(
        "SELECT fingerprint, rows_affected, last_insert_id, statement_results FROM {}.`{VIEW}` \
         WHERE principal = ? AND request_id = ?{}",
        quoted(schema),
        if locking { " LOCK IN SHARE MODE" } else { "" }
    )
}

/// The values of a record, as [`insert`] writes them.
pub struct Record<'a> {
    /// The principal, as stored.
    pub principal: &'a [u8],
    /// The client's request id.
    pub request_id: &'a [u8],
    /// The call's fingerprint.
    pub fingerprint: &'a [u8],
    /// Rows affected.
    pub rows_affected: u64,
    /// Last insert id.
    pub last_insert_id: u64,
    /// A batch's statement results, encoded.
    pub statement_results: Option<&'a [u8]>,
}

/// Writes `record`, as text: every value is the gateway's own, so the
/// statement is sent in one COM_QUERY instead of a PREPARE (which a reset of
/// the connection would force again for every call) and an EXECUTE. Bytes go
/// as hexadecimal literals (`X'…'`), which mean the same bytes under every
/// `sql_mode` and character set (no quote or backslash to escape, so
/// `NO_BACKSLASH_ESCAPES` or `ANSI_QUOTES` set by the call's own SQL change
/// nothing), numbers as decimal digits.
pub fn insert(schema: &str, record: &Record<'_>) -> String {
    use std::fmt::Write;
    let hex_len = 2
        * (record.principal.len()
            + record.request_id.len()
            + record.fingerprint.len()
            + record.statement_results.map_or(0, <[u8]>::len));
    let mut sql = String::with_capacity(400 + schema.len() + hex_len);
    let _ = write!(
        sql,
        "INSERT INTO {}.`{VIEW}` (account, principal, request_id, fingerprint, rows_affected, \
         last_insert_id, statement_results) VALUES ({ACCOUNT}, ",
        quoted(schema)
    );
    for bytes in [record.principal, record.request_id, record.fingerprint] {
        hex_literal(&mut sql, bytes);
        sql.push_str(", ");
    }
    let _ = write!(sql, "{}, {}, ", record.rows_affected, record.last_insert_id);
    match record.statement_results {
        Some(bytes) => hex_literal(&mut sql, bytes),
        None => sql.push_str("NULL"),
    }
    sql.push(')');
    sql
}

/// Appends `bytes` as a hexadecimal string literal, `X'…'` (`X''` when empty).
fn hex_literal(sql: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    sql.push_str("X'");
    for byte in bytes {
        sql.push(char::from(DIGITS[usize::from(byte >> 4)]));
        sql.push(char::from(DIGITS[usize::from(byte & 0xF)]));
    }
    sql.push('\'');
}

/// Checks that the view can be read (it exists and the account may).
pub fn probe(schema: &str) -> String {
    format!("SELECT 1 FROM {}.`{VIEW}` LIMIT 0", quoted(schema))
}

/// Deletes up to [`PURGE_BATCH`] records older than a number of
/// microseconds (parameter).
pub fn purge(schema: &str) -> String {
    format!(
        "DELETE FROM {}.`{TABLE}` WHERE created_at < NOW(6) - INTERVAL ? MICROSECOND LIMIT {PURGE_BATCH}",
        quoted(schema)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_written_with_hexadecimal_literals() {
        let record = Record {
            principal: b"",
            request_id: "a'b\\c\"d é".as_bytes(),
            fingerprint: &[0, 0xff, 0x10],
            rows_affected: u64::MAX,
            last_insert_id: 7,
            statement_results: None,
        };
        let sql = insert("s`x", &record);
        assert!(
            sql.starts_with("INSERT INTO `s``x`.`sqlgate_outcomes_mine` ("),
            "{sql}"
        );
        assert!(
            sql.ends_with(
                "X'', X'6127625C63226420C3A9', X'00FF10', 18446744073709551615, 7, NULL)"
            ),
            "{sql}"
        );
        let with_results = Record {
            statement_results: Some(&[1, 2]),
            ..record
        };
        assert!(insert("s", &with_results).ends_with(", 7, X'0102')"));
    }
}

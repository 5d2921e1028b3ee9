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

/// Writes a record: principal, request id, fingerprint, rows affected, last
/// insert id, statement results (parameters).
pub fn insert(schema: &str) -> String {
    format!(
        "INSERT INTO {}.`{VIEW}` (account, principal, request_id, fingerprint, rows_affected, \
         last_insert_id, statement_results) VALUES ({ACCOUNT}, ?, ?, ?, ?, ?, ?)",
        quoted(schema)
    )
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

use proptest::prelude::*;

use super::{GuardContext, StatementKind, check_statement};
use crate::errors::GatewayError;

mod roles;

const PLAIN: GuardContext = GuardContext {
    in_transaction: false,
    read_only: false,
    schema: false,
    sql_mode: None,
};
const IN_TX: GuardContext = GuardContext {
    in_transaction: true,
    read_only: false,
    schema: false,
    sql_mode: None,
};
const READER: GuardContext = GuardContext {
    in_transaction: false,
    read_only: true,
    schema: false,
    sql_mode: None,
};
const SCHEMA: GuardContext = GuardContext {
    in_transaction: false,
    read_only: false,
    schema: true,
    sql_mode: None,
};
const SCHEMA_IN_TX: GuardContext = GuardContext {
    in_transaction: true,
    read_only: false,
    schema: true,
    sql_mode: None,
};

/// Which refusal a statement gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Invalid,
    NotAllowed,
    ReadOnly,
    Implicit,
}
use Refusal::*;

fn refusal(sql: &str, context: GuardContext) -> Option<Refusal> {
    match check_statement(sql, context) {
        Ok(_) => None,
        Err(GatewayError::InvalidRequest(_)) => Some(Invalid),
        Err(GatewayError::StatementNotAllowed(_)) => Some(NotAllowed),
        Err(GatewayError::ReadOnlyStatement(_)) => Some(ReadOnly),
        Err(GatewayError::ImplicitCommit(_)) => Some(Implicit),
        Err(other) => panic!("{sql:?}: unexpected error {other:?}"),
    }
}

fn assert_refused(cases: &[&str], context: GuardContext, expected: Refusal) {
    for sql in cases {
        assert_eq!(
            refusal(sql, context),
            Some(expected),
            "{sql:?} in {context:?}: {:?}",
            check_statement(sql, context)
        );
    }
}

fn assert_passes(cases: &[&str], context: GuardContext) {
    for sql in cases {
        assert!(
            check_statement(sql, context).is_ok(),
            "{sql:?} should pass in {context:?}: {:?}",
            check_statement(sql, context)
        );
    }
}

/// The reported bypasses: each passed the old guard, each is refused now.
#[test]
fn reported_bypasses_are_refused() {
    assert_refused(
        &[
            // The server skips the body of a comment for a later version.
            "/*!999999 SELECT 1 */ COMMIT",
            "/*M!999999 SELECT 1 */ COMMIT",
            "/*!99999 SELECT 1 */ ROLLBACK",
            "/*!999999 SELECT 1 */ ROLLBACK",
            "/*M!999999 SELECT 1 */ LOCK TABLES t WRITE",
            "SELECT 1 /*M!100000 */",
            // `--` and a control byte start a comment; \x0b is a blank.
            "--\x0bSELECT\nCOMMIT",
            "--\x01x\nCOMMIT",
            "--\x7fx\nROLLBACK",
            "--\x0bx\nUSE mysql",
            "\x0bCOMMIT",
            "\x0bSAVEPOINT sqlgate_batch",
            // Backquoted names are the same names.
            "SET `autocommit`=0",
            "SET @@`session`.`autocommit` = 0",
        ],
        IN_TX,
        Invalid,
    );
    // Read-only principals reached DDL and administration.
    assert_refused(
        &["CREATE TABLE u (x INT)", "/* c */ DROP TABLE t"],
        READER,
        ReadOnly,
    );
    assert_refused(
        &[
            "GRANT ALL ON *.* TO x",
            "KILL 1",
            "SET GLOBAL max_connections = 1",
        ],
        READER,
        NotAllowed,
    );
}

#[test]
fn executable_comments_are_refused_with_a_clear_message() {
    let error = check_statement("SELECT 1 /*!50000 + 1 */", PLAIN).unwrap_err();
    assert_eq!(
        error.to_string(),
        "executable comments /*! … */ are not allowed: send plain SQL"
    );
    // Even in a position where the server would skip the body.
    assert_refused(
        &[
            "SELECT /*!999999 1, */ 2",
            "select /*M!999999 x */ 1",
            "SELECT 1 /*M!*/",
        ],
        PLAIN,
        Invalid,
    );
}

#[test]
fn transaction_control_is_refused_in_every_spelling() {
    assert_refused(
        &[
            "BEGIN",
            "begin work",
            "BeGiN",
            "START TRANSACTION READ ONLY",
            "start /* x */ transaction",
            "START\x0bTRANSACTION",
            "COMMIT",
            "commit work and chain",
            "  /* x */ commit",
            "# comment\nCOMMIT",
            "-- comment\nCOMMIT",
            "--\tx\nCOMMIT",
            "--\rx\nCOMMIT",
            "--\x0cSELECT\nROLLBACK",
            "#x\x0bSELECT\nSAVEPOINT s",
            "/*M! COMMIT */",
            "/*!40101 COMMIT */",
            "SELECT 1 /*! ; DROP TABLE t */",
            "ROLLBACK TO SAVEPOINT s",
            "`COMMIT`",
            "(COMMIT)",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "XA START 'x'",
            "xa commit 'x'",
            "SET STATEMENT max_statement_time=1 FOR COMMIT",
            "set statement max_statement_time=1 for /* c */ rollback",
            "SET STATEMENT sql_mode='' FOR START TRANSACTION",
        ],
        PLAIN,
        Invalid,
    );
}

#[test]
fn autocommit_changes_are_refused_in_every_spelling() {
    assert_refused(
        &[
            "SET autocommit = 0",
            "SET @@autocommit=0",
            "set session autocommit=1",
            "SET LOCAL autocommit = 0",
            "SET @@session.autocommit = 0",
            "SET @@local.autocommit = 0",
            "SET @@SESSION.AUTOCOMMIT = OFF",
            "SET `autocommit` = 0",
            "SET @@`session`.`autocommit` = 0",
            "SET @@session . autocommit = 0",
            "SET /* c */ autocommit /* c */ = 0",
            "SET\x0bautocommit=0",
            "SET x = 1, autocommit = 0",
            "SET @x = 1, @@autocommit = 0",
            "SET completion_type = 1",
            "SET \"autocommit\" = 0",
            "SET STATEMENT sql_mode='' FOR SET autocommit = 0",
        ],
        PLAIN,
        Invalid,
    );
    // A user variable of that name is not the system variable.
    assert_passes(&["SET @autocommit = 0", "SET @`autocommit` = 0"], PLAIN);
}

#[test]
fn connection_state_statements_are_refused() {
    assert_refused(
        &[
            "LOCK TABLES t WRITE",
            "lock table t read",
            "UNLOCK TABLES",
            "BACKUP LOCK t",
            "BACKUP UNLOCK",
            "USE mysql",
            "use `mysql`",
            "/* c */ USE test",
            "PREPARE s FROM 'SELECT 1'",
            "EXECUTE s",
            "EXECUTE IMMEDIATE 'COMMIT'",
            "DEALLOCATE PREPARE s",
            "DROP PREPARE s",
            "HANDLER t OPEN",
            "handler t read first",
        ],
        PLAIN,
        Invalid,
    );
}

#[test]
fn stacked_and_malformed_statements_are_refused() {
    assert_refused(
        &[
            "",
            "   ",
            "\x0b\x0c",
            "-- only a comment",
            "/* only a comment */",
            ";",
            "SELECT 1; SELECT 2",
            "SELECT 1;DROP TABLE t",
            "SELECT 1 -- x\n; SELECT 2",
            "SELECT 1 /* unterminated",
            "SELECT 'unterminated",
            "SELECT `unterminated",
            "SELECT \"unterminated",
            "SELECT 1 # a\rCOMMIT",
            "SELECT 1 -- a\r; COMMIT",
            "SELECT 1\0",
            "SELECT '\0'",
        ],
        PLAIN,
        Invalid,
    );
}

#[test]
fn block_comments_do_not_nest() {
    let error = check_statement("/* a /* b */ COMMIT", PLAIN).unwrap_err();
    assert!(error.to_string().contains("transaction-control"), "{error}");
}

#[test]
fn quoting_is_read_under_every_sql_mode() {
    // With backslash escapes, `'\'` does not end the string; without, it does.
    assert_refused(
        &[
            "SELECT 'a\\'; COMMIT; -- '",
            "SELECT \"a\\\"; COMMIT; -- \"",
            "SELECT 'a\\' COMMIT '",
            "SELECT 'back\\'slash;'",
            "SELECT 'O\\'Brien'",
        ],
        PLAIN,
        Invalid,
    );
    // Both readings end up the same: fine.
    assert_passes(
        &[
            "SELECT 'back\\\\slash'",
            "SELECT 'it''s'",
            "SELECT \"a\"\"b\"",
            "SELECT 'a\\nb'",
        ],
        PLAIN,
    );
}

#[test]
fn mssql_brackets_are_read_as_identifiers_too() {
    // Under sql_mode MSSQL, `[x']` is an identifier and the rest is code.
    assert_refused(
        &["SELECT [a'], '; COMMIT; -- ']", "SELECT 1 AS [unterminated"],
        PLAIN,
        Invalid,
    );
    assert_refused(
        &[
            "SELECT 1 AS [x'] INTO OUTFILE '/tmp/f' -- ']",
            "SELECT 1 AS [x'] , ' INTO OUTFILE '/tmp/f' -- ']",
        ],
        PLAIN,
        NotAllowed,
    );
    assert_passes(
        &[
            "SELECT JSON_EXTRACT(j, '$[0]') FROM t",
            "SELECT 1 AS [a]]b]",
        ],
        PLAIN,
    );
}

#[test]
fn the_client_character_set_stays_utf8() {
    assert_refused(
        &[
            "SET NAMES sjis",
            "set names 'gbk'",
            "SET NAMES latin1",
            "SET NAMES DEFAULT",
            "SET CHARACTER SET big5",
            "SET CHARSET cp932",
            "SET character_set_client = gbk",
            "SET @@session.character_set_client := 'sjis'",
            "SET @x = 1, NAMES gb18030",
        ],
        PLAIN,
        Invalid,
    );
    assert_passes(
        &[
            "SET NAMES utf8mb4",
            "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'",
            "SET NAMES utf8",
            "SET CHARACTER SET utf8mb4",
            "SET character_set_client = utf8mb4",
            "SET character_set_results = latin1",
            "SET @names = 'sjis'",
        ],
        READER,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever the text, the guard answers; what it accepts is a prefix of it.
    #[test]
    fn never_panics_and_accepts_prefixes(sql in "(?s).{0,120}", in_transaction: bool, read_only: bool, schema: bool) {
        let context = GuardContext { in_transaction, read_only, schema, sql_mode: None };
        if let Ok(checked) = check_statement(&sql, context) {
            prop_assert!(sql.starts_with(checked.sql));
            prop_assert!(!checked.sql.is_empty());
        }
    }

    /// SQL-shaped text: keywords, quotes, comment openers, blanks.
    #[test]
    fn never_panics_on_sql_like_text(parts in proptest::collection::vec(prop_oneof![
        Just("SELECT"), Just("COMMIT"), Just("SET"), Just("autocommit"), Just("="), Just("0"),
        Just("'"), Just("\""), Just("`"), Just("\\"), Just("/*"), Just("*/"), Just("/*!"),
        Just("/*M!"), Just("--"), Just("#"), Just("\n"), Just("\r"), Just("\x0b"), Just(" "),
        Just(";"), Just("("), Just(")"), Just("@@"), Just("@"), Just("."), Just("FOR"),
        Just("STATEMENT"), Just("WITH"), Just("AS"), Just("DEFINER"), Just("CREATE"),
        Just("TEMPORARY"), Just("TABLE"), Just("EXPLAIN"), Just("ANALYZE"), Just("é"),
    ], 0..24), in_transaction: bool, read_only: bool, schema: bool) {
        let sql: String = parts.concat();
        let context = GuardContext { in_transaction, read_only, schema, sql_mode: None };
        if let Ok(checked) = check_statement(&sql, context) {
            prop_assert!(sql.starts_with(checked.sql));
        }
    }

    /// Arbitrary bytes, read as (lossy) UTF-8.
    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        let sql = String::from_utf8_lossy(&bytes);
        if let Ok(checked) = check_statement(&sql, GuardContext::default()) {
            prop_assert!(sql.starts_with(checked.sql));
        }
    }
}

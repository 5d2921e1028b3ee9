//! Refusals by role and kind: administration, implicit commits, read-only
//! callers, the schema role's code, savepoints, version comments.

use super::*;

#[test]
fn administration_is_not_allowed() {
    assert_refused(
        &[
            "KILL 5",
            "kill query 5",
            "SHUTDOWN",
            "SET GLOBAL max_connections = 10",
            "SET @@global.max_connections = 10",
            "SET @@`global`.max_connections = 10",
            "SET x = 1, GLOBAL y = 2",
            "SET PERSIST max_connections = 10",
            "CREATE USER x",
            "create user if not exists x identified by 'p'",
            "ALTER USER x IDENTIFIED BY 'p'",
            "DROP USER x",
            "RENAME USER x TO y",
            "CREATE ROLE r",
            "DROP ROLE r",
            "GRANT SELECT ON t TO x",
            "REVOKE SELECT ON t FROM x",
            "SET PASSWORD = PASSWORD('x')",
            "SET PASSWORD FOR x = 'y'",
            "SET ROLE admin",
            "SET DEFAULT ROLE admin",
            "SELECT * FROM t INTO OUTFILE '/tmp/x'",
            "SELECT 1 INTO DUMPFILE '/tmp/x'",
            "select 1 into /* c */ outfile '/tmp/x'",
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
            "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t",
            "load xml infile 'x' into table t",
            "SELECT LOAD_FILE('/etc/passwd')",
            "SELECT load_file ('/etc/passwd')",
            "SELECT `load_file`('/etc/passwd')",
            "SELECT LOAD_FILE /* c */ ('/etc/passwd')",
            "INSERT INTO t VALUES (LOAD_FILE('/etc/passwd'))",
            "INSTALL PLUGIN x SONAME 'x.so'",
            "INSTALL SONAME 'x'",
            "UNINSTALL PLUGIN x",
            "CREATE FUNCTION f RETURNS STRING SONAME 'x.so'",
            "CHANGE MASTER TO MASTER_HOST='x'",
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='x'",
            "START SLAVE",
            "START REPLICA",
            "STOP SLAVE",
            "STOP ALL SLAVES",
            "RESET MASTER",
            "RESET QUERY CACHE",
            "FLUSH TABLES",
            "FLUSH TABLES WITH READ LOCK",
            "PURGE BINARY LOGS BEFORE NOW()",
            "BINLOG 'abc'",
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'x')",
            "ALTER SERVER s OPTIONS (HOST 'y')",
            "DROP SERVER s",
            "BACKUP STAGE START",
            "SET STATEMENT max_statement_time=1 FOR KILL 5",
            "EXPLAIN SELECT * FROM t INTO OUTFILE '/tmp/x'",
        ],
        PLAIN,
        NotAllowed,
    );
    let error = check_statement("KILL 5", PLAIN).unwrap_err();
    assert_eq!(
        error.to_string(),
        "KILL is not allowed through the gateway: server administration is not available to clients"
    );
    // Not allowed comes first, for read-only callers and in transactions too.
    assert_refused(&["GRANT ALL ON *.* TO x"], READER, NotAllowed);
    assert_refused(&["CREATE USER x"], IN_TX, NotAllowed);
}

#[test]
fn implicit_commits_are_refused_in_transactions_only() {
    let commits = [
        "CREATE TABLE t2 (id INT)",
        "create table if not exists t2 (id int)",
        "CREATE OR REPLACE TABLE t2 (id INT)",
        "ALTER TABLE t ADD COLUMN x INT",
        "alter online table t add column x int",
        "DROP TABLE t",
        "DROP TABLE IF EXISTS t",
        "CREATE DATABASE d",
        "DROP SCHEMA d",
        "CREATE INDEX i ON t (id)",
        "CREATE UNIQUE INDEX i ON t (id)",
        "DROP INDEX i ON t",
        "CREATE SQL SECURITY INVOKER VIEW v AS SELECT 1",
        "CREATE OR REPLACE DEFINER = `user`@`%` SQL SECURITY INVOKER VIEW v AS SELECT 1",
        "DROP VIEW v",
        "CREATE SEQUENCE s",
        "CREATE TEMPORARY SEQUENCE s",
        "ALTER TABLE tmp ADD COLUMN x INT",
        "RENAME TABLE t TO u",
        "TRUNCATE t",
        "TRUNCATE TABLE t",
        "ANALYZE TABLE t",
        "CHECK TABLE t",
        "OPTIMIZE TABLE t",
        "REPAIR TABLE t",
        "CACHE INDEX t IN c",
        "LOAD INDEX INTO CACHE t",
        "/* c */ create -- c\n table t2 (id int)",
        "`CREATE` TABLE t2 (id INT)",
        "SET STATEMENT max_statement_time=1 FOR TRUNCATE t",
        "(DROP TABLE t)",
    ];
    assert_refused(&commits, IN_TX, Implicit);
    assert_passes(&commits, PLAIN);
    assert_refused(&CODE, SCHEMA_IN_TX, Implicit);
    let error = check_statement("TRUNCATE t", IN_TX).unwrap_err();
    assert_eq!(
        error.to_string(),
        "TRUNCATE TABLE commits the open transaction implicitly in MySQL, so it is not allowed inside a transaction: run it as an autocommit call"
    );
    // Temporary tables do not commit.
    assert_passes(
        &[
            "CREATE TEMPORARY TABLE tmp (id INT)",
            "create or replace temporary table tmp (id int)",
            "CREATE TEMPORARY TABLE IF NOT EXISTS tmp SELECT 1 AS x",
            "DROP TEMPORARY TABLE tmp",
            "DROP TEMPORARY TABLE IF EXISTS tmp",
        ],
        IN_TX,
    );
}

#[test]
fn read_only_callers_run_reads_only() {
    assert_passes(
        &[
            "SELECT 1",
            "(SELECT 1) UNION (SELECT 2)",
            "WITH c AS (SELECT 1 AS x) SELECT * FROM c",
            "WITH RECURSIVE c (n) AS (SELECT 1 UNION SELECT n + 1 FROM c WHERE n < 3), d AS (SELECT 2) SELECT * FROM c, d",
            "VALUES (1), (2)",
            "TABLE t",
            "SHOW TABLES",
            "show create table t",
            "DESCRIBE t",
            "DESC t",
            "EXPLAIN SELECT * FROM t",
            "EXPLAIN FORMAT=JSON SELECT 1",
            "EXPLAIN UPDATE t SET x = 1",
            "HELP 'select'",
            "SET @x = 1",
            "SET SESSION sql_mode = ''",
            "SET NAMES utf8mb4",
            "SELECT * FROM t FOR UPDATE",
        ],
        READER,
    );
    assert_refused(
        &[
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET x = 1",
            "DELETE FROM t",
            "REPLACE INTO t VALUES (1)",
            "CREATE TABLE u (x INT)",
            "CREATE TEMPORARY TABLE tmp (x INT)",
            "DROP TABLE t",
            "TRUNCATE t",
            "CALL p()",
            "DO 1",
            "CHECK TABLE t",
            "EXPLAIN ANALYZE SELECT 1",
            "ANALYZE SELECT 1",
            "ANALYZE DELETE FROM t",
            "ANALYZE TABLE t",
            "WITH c AS (SELECT 1) DELETE FROM t",
            "/* SELECT */ INSERT INTO t VALUES (1)",
        ],
        READER,
        ReadOnly,
    );
    // Leaving read-only mode stays an invalid request.
    assert_refused(
        &[
            "SET SESSION TRANSACTION READ WRITE",
            "set transaction read write",
            "SET @@session.tx_read_only = 0",
            "SET transaction_read_only = OFF",
            "SET STATEMENT tx_read_only=0 FOR UPDATE t SET x = 1",
        ],
        READER,
        Invalid,
    );
    // Not for other callers.
    assert_passes(
        &[
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET STATEMENT max_statement_time=1 FOR SELECT 1",
        ],
        PLAIN,
    );
}

#[test]
fn ordinary_statements_pass() {
    for context in [PLAIN, IN_TX] {
        assert_passes(
            &[
                "SELECT 1",
                "select * from t where name = 'a;b' and x = \"c;d\"",
                "INSERT INTO `odd;name` VALUES (?, ?)",
                "UPDATE t SET v = v + 1 -- comment; with semicolon\n WHERE id = 1",
                "SELECT 'it''s; fine', 'back\\\\slash;'",
                "SELECT 1 --\x0b;COMMIT",
                "SELECT 'COMMIT; ROLLBACK; /*! USE x */ --\x0b'",
                "SELECT '/*!999999' AS a, \"*/ COMMIT\" AS b",
                "SET @x = 1",
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES'",
                "/* leading; comment */ SELECT 2",
                "SELECT 1 # trailing; comment",
                "SELECT 1 -- trailing comment",
                "SELECT 1 --",
                "SELECT 1 -- a\r\n",
                "SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1",
                "SELECT /*m!999999 1, */ 2",
                "SELECT 5--1",
                "SELECT 'ROLLBACK'",
                "SELECT commit_id FROM t",
                "SELECT * FROM `use`",
                "CALL p(1)",
                "DO 1",
                "CREATE TEMPORARY TABLE tmp (id INT)",
                "SELECT 1 */",
                "SELECT x FROM t WHERE a = 'x' INTO @v",
            ],
            context,
        );
    }
}

#[test]
fn kinds_and_trimming() {
    let check = |sql| check_statement(sql, PLAIN).unwrap();
    assert_eq!(check("SELECT 1 ;  ; ").sql, "SELECT 1");
    assert_eq!(check("SELECT ';'").sql, "SELECT ';'");
    assert_eq!(check("SELECT 1\x0b;\x0c").sql, "SELECT 1");
    assert_eq!(check("SELECT 1 -- c\n;").sql, "SELECT 1 -- c");
    for (sql, kind) in [
        ("SELECT 1", StatementKind::Read),
        ("WITH c AS (SELECT 1) SELECT 2", StatementKind::Read),
        ("SHOW TABLES", StatementKind::Read),
        ("EXPLAIN SELECT 1", StatementKind::Read),
        ("INSERT INTO t VALUES (1)", StatementKind::Write),
        ("ANALYZE UPDATE t SET x = 1", StatementKind::Write),
        ("CREATE TABLE t (x INT)", StatementKind::Ddl),
        ("TRUNCATE t", StatementKind::Ddl),
        ("CALL p()", StatementKind::Call),
        ("SET @x = 1", StatementKind::Set),
        (
            "SET STATEMENT max_statement_time=1 FOR DELETE FROM t",
            StatementKind::Write,
        ),
        ("DO 1", StatementKind::Other),
    ] {
        assert_eq!(check(sql).kind, kind, "{sql}");
    }
}

#[test]
fn identity_words_are_flagged() {
    let flag = |sql| check_statement(sql, PLAIN).unwrap().may_change_identity;
    assert!(!flag("SELECT 1"));
    assert!(!flag("SELECT 'USE x', 'ROLE'"));
    assert!(flag("SELECT role FROM t"));
    assert!(flag("SELECT `Role` FROM t"));
    assert!(flag("CALL p()"));
    assert!(flag("SELECT 1 /* use test */"));
    assert!(flag("SELECT 1 -- set role x"));
    assert!(flag("SELECT 1 # execute"));
    assert!(flag("SELECT prepare FROM t"));
    // Under ANSI_QUOTES "role" is an identifier.
    assert!(flag("SELECT \"role\""));
}
/// What installs code the server runs later (schema role only).
const CODE: [&str; 10] = [
    "CREATE VIEW v AS SELECT 1",
    "ALTER DEFINER = CURRENT_USER VIEW v AS SELECT 2",
    "CREATE DEFINER=CURRENT_USER() TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.id = 1",
    "CREATE PROCEDURE p() SELECT 1",
    "create procedure p() execute immediate 'select 1'",
    "DROP FUNCTION f",
    "DROP PROCEDURE IF EXISTS p",
    "ALTER PROCEDURE p COMMENT 'x'",
    "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1",
    "CREATE OR REPLACE FUNCTION f() RETURNS INT RETURN 1",
];

#[test]
fn only_the_schema_role_installs_code() {
    assert_refused(&CODE, PLAIN, NotAllowed);
    assert_refused(&CODE, IN_TX, NotAllowed);
    assert_refused(&CODE, READER, NotAllowed);
    assert_passes(&CODE, SCHEMA);
    let bodies = [
        "CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); SELECT 1; END",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.id = NEW.id + 1; SET NEW.x = 2; END;",
        "CREATE FUNCTION f(x INT) RETURNS INT BEGIN DECLARE y INT; SET y = x * 2; RETURN y; END ;;",
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM t; DELETE FROM u; END",
    ];
    assert_passes(&bodies, SCHEMA);
    assert_refused(&bodies, PLAIN, NotAllowed);
    // The whole body is the statement (trailing `;` and blanks dropped).
    let checked = check_statement(bodies[1], SCHEMA).unwrap();
    assert!(checked.sql.ends_with("END"), "{}", checked.sql);
    let checked = check_statement(bodies[2], SCHEMA).unwrap();
    assert!(checked.sql.ends_with("END"), "{}", checked.sql);
    // Other statements stay one per call, for the schema role too, and what
    // is refused for everyone is refused in a body.
    assert_refused(
        &["SELECT 1; SELECT 2", "CREATE TABLE a (x INT); DROP TABLE b"],
        SCHEMA,
        Invalid,
    );
    assert_refused(
        &[
            "CREATE PROCEDURE p() BEGIN SELECT LOAD_FILE('/etc/passwd'); END",
            "CREATE PROCEDURE p() BEGIN SELECT 1 INTO OUTFILE '/tmp/x'; END",
        ],
        SCHEMA,
        NotAllowed,
    );
    // PREPARE and EXECUTE: the schema role only.
    let prepare = [
        "PREPARE s FROM 'SELECT 1'",
        "EXECUTE IMMEDIATE 'SELECT 1'",
        "DEALLOCATE PREPARE s",
    ];
    assert_refused(&prepare, PLAIN, Invalid);
    assert_passes(&prepare, SCHEMA);
    // Invoker views and dropping views are for every writer.
    assert_passes(
        &[
            "CREATE SQL SECURITY INVOKER VIEW v AS SELECT 1",
            "DROP VIEW IF EXISTS v",
        ],
        PLAIN,
    );
}

#[test]
fn savepoints_work_inside_transactions() {
    let savepoints = [
        "SAVEPOINT sa_savepoint_1",
        "RELEASE SAVEPOINT sa_savepoint_1",
        "ROLLBACK TO SAVEPOINT sa_savepoint_1",
        "rollback work to s1",
        "SAVEPOINT `active_record_1`",
    ];
    assert_passes(&savepoints, IN_TX);
    assert_passes(
        &savepoints[..2],
        GuardContext {
            read_only: true,
            ..IN_TX
        },
    );
    assert_refused(&savepoints, PLAIN, Invalid);
    assert_refused(
        &[
            "SAVEPOINT sqlgate_batch",
            "ROLLBACK TO SAVEPOINT SQLGATE_call_00",
            "RELEASE SAVEPOINT `sqlgate_x`",
            "ROLLBACK",
            "ROLLBACK AND CHAIN",
            "ROLLBACK TO SAVEPOINT s; COMMIT",
            "ROLLBACK TO SAVEPOINT s RELEASE",
            "COMMIT",
        ],
        IN_TX,
        Invalid,
    );
}

#[test]
fn read_only_callers_set_their_isolation_and_statement_time() {
    assert_passes(
        &[
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
            "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET STATEMENT max_statement_time=5 FOR SELECT 1",
            "SET @@session.transaction_isolation = 'READ-COMMITTED'",
        ],
        READER,
    );
    assert_refused(
        &[
            "SET SESSION TRANSACTION READ WRITE",
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE",
            "SET SESSION transaction_read_only = 0",
            "SET STATEMENT tx_read_only=0 FOR SELECT 1",
        ],
        READER,
        Invalid,
    );
    assert_refused(
        &["SET STATEMENT max_statement_time=5 FOR DELETE FROM t"],
        READER,
        ReadOnly,
    );
}

#[test]
fn version_comments_every_server_runs_are_read_as_their_body() {
    assert_passes(
        &[
            "/*!40101 SET NAMES utf8mb4 */",
            "/*!40014 SET FOREIGN_KEY_CHECKS=0 */;",
            "  /*! SET time_zone = '+00:00' */ ",
            "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */",
        ],
        PLAIN,
    );
    let checked = check_statement("/*!40101 SET NAMES utf8mb4 */;", PLAIN).unwrap();
    assert_eq!(checked.sql, "/*!40101 SET NAMES utf8mb4 */");
    // What is sent is a prefix of the text, as for any statement (found by
    // never_panics_on_sql_like_text: leading blanks were trimmed too).
    let checked = check_statement("\n /*!SET NAMES utf8mb4*/ ;", PLAIN).unwrap();
    assert_eq!(checked.sql, "\n /*!SET NAMES utf8mb4*/");
    assert_eq!(checked.kind, StatementKind::Set);
    // The body is checked like any statement; other versions and forms stay refused.
    assert_refused(
        &[
            "/*!40101 COMMIT */",
            "/*!50800 SELECT 1 */",
            "/*!100000 SELECT 1 */",
            "/*M!100000 SELECT 1 */",
            "/*!40101 SELECT 1 */ COMMIT",
            "/*!40101 SELECT '*/' */",
            "/*!40101 SET NAMES latin1 */",
        ],
        IN_TX,
        Invalid,
    );
    assert_refused(&["/*!40101 KILL 1 */"], PLAIN, NotAllowed);
}

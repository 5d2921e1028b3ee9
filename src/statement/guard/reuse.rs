//! Whether a statement is a plain read that leaves no trace in the session,
//! so that its connection may go back to the pool without a reset (when the
//! server's session tracking agrees, see `database::GiveBack::Reuse`).
//!
//! The server does not flag everything a read can change (NOTES.md, "Reusing
//! connections without a reset"): `SELECT @y := 2`, `SELECT … INTO @v`,
//! `GET_LOCK`, `LAST_INSERT_ID(expr)`, sequences. So the text must show that
//! none of these can happen: a SELECT (or WITH, VALUES, TABLE) with no `@`
//! outside strings, no `INTO`, no locking clause, and only functions from
//! [`FUNCTIONS`] (built-ins without side effects on the session) or
//! keywords that may precede `(` ([`KEYWORDS_BEFORE_PARENTHESIS`]). Anything
//! else is not a plain read, and its connection is reset as before.
use super::lexer::Token;

/// Built-in functions that change nothing in the session. Deliberately
/// absent: GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_FREE_LOCK and
/// IS_USED_LOCK (named locks), LAST_INSERT_ID, NEXTVAL, LASTVAL, SETVAL,
/// NEXT/PREVIOUS VALUE FOR (sequences), SLEEP, BENCHMARK, FOUND_ROWS,
/// ROW_COUNT, LOAD_FILE, MASTER_POS_WAIT and every stored or loadable
/// function (any name not listed).
const FUNCTIONS: &[&str] = &[
    // Comparison, control flow, casts.
    "ABS",
    "CASE",
    "CAST",
    "CONVERT",
    "COALESCE",
    "GREATEST",
    "LEAST",
    "IF",
    "IFNULL",
    "NULLIF",
    "ISNULL",
    "NVL",
    "NVL2",
    "INTERVAL",
    "STRCMP",
    "DECODE_ORACLE",
    // Arithmetic.
    "ACOS",
    "ASIN",
    "ATAN",
    "ATAN2",
    "CEIL",
    "CEILING",
    "CONV",
    "COS",
    "COT",
    "CRC32",
    "DEGREES",
    "DIV",
    "EXP",
    "FLOOR",
    "LN",
    "LOG",
    "LOG10",
    "LOG2",
    "MOD",
    "PI",
    "POW",
    "POWER",
    "RADIANS",
    "RAND",
    "ROUND",
    "SIGN",
    "SIN",
    "SQRT",
    "TAN",
    "TRUNCATE",
    // Strings.
    "ASCII",
    "BIN",
    "BIT_LENGTH",
    "CHAR",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "CHR",
    "CONCAT",
    "CONCAT_WS",
    "ELT",
    "EXPORT_SET",
    "FIELD",
    "FIND_IN_SET",
    "FORMAT",
    "FROM_BASE64",
    "HEX",
    "INSERT",
    "INSTR",
    "LCASE",
    "LEFT",
    "LENGTH",
    "LENGTHB",
    "LOCATE",
    "LOWER",
    "LPAD",
    "LTRIM",
    "MAKE_SET",
    "MID",
    "OCT",
    "OCTET_LENGTH",
    "ORD",
    "POSITION",
    "QUOTE",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "RPAD",
    "RTRIM",
    "SOUNDEX",
    "SPACE",
    "SUBSTR",
    "SUBSTRING",
    "SUBSTRING_INDEX",
    "TO_BASE64",
    "TRIM",
    "UCASE",
    "UNHEX",
    "UPPER",
    "REGEXP_INSTR",
    "REGEXP_REPLACE",
    "REGEXP_SUBSTR",
    "COLLATION",
    "CHARSET",
    "COERCIBILITY",
    "WEIGHT_STRING",
    "MD5",
    "SHA",
    "SHA1",
    "SHA2",
    "UUID",
    "UUID_SHORT",
    "INET_ATON",
    "INET_NTOA",
    "INET6_ATON",
    "INET6_NTOA",
    "BIT_COUNT",
    "COMPRESS",
    "UNCOMPRESS",
    "UNCOMPRESSED_LENGTH",
    // Dates and times.
    "ADDDATE",
    "ADDTIME",
    "CONVERT_TZ",
    "CURDATE",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURTIME",
    "DATE",
    "DATE_ADD",
    "DATE_FORMAT",
    "DATE_SUB",
    "DATEDIFF",
    "DAY",
    "DAYNAME",
    "DAYOFMONTH",
    "DAYOFWEEK",
    "DAYOFYEAR",
    "EXTRACT",
    "FROM_DAYS",
    "FROM_UNIXTIME",
    "HOUR",
    "LAST_DAY",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "MAKEDATE",
    "MAKETIME",
    "MICROSECOND",
    "MINUTE",
    "MONTH",
    "MONTHNAME",
    "NOW",
    "PERIOD_ADD",
    "PERIOD_DIFF",
    "QUARTER",
    "SECOND",
    "SEC_TO_TIME",
    "STR_TO_DATE",
    "SUBDATE",
    "SUBTIME",
    "SYSDATE",
    "TIME",
    "TIME_FORMAT",
    "TIME_TO_SEC",
    "TIMEDIFF",
    "TIMESTAMP",
    "TIMESTAMPADD",
    "TIMESTAMPDIFF",
    "TO_DAYS",
    "TO_SECONDS",
    "UNIX_TIMESTAMP",
    "UTC_DATE",
    "UTC_TIME",
    "UTC_TIMESTAMP",
    "WEEK",
    "WEEKDAY",
    "WEEKOFYEAR",
    "YEAR",
    "YEARWEEK",
    // JSON.
    "JSON_ARRAY",
    "JSON_ARRAYAGG",
    "JSON_ARRAY_APPEND",
    "JSON_ARRAY_INSERT",
    "JSON_COMPACT",
    "JSON_CONTAINS",
    "JSON_CONTAINS_PATH",
    "JSON_DEPTH",
    "JSON_DETAILED",
    "JSON_EXISTS",
    "JSON_EXTRACT",
    "JSON_INSERT",
    "JSON_KEYS",
    "JSON_LENGTH",
    "JSON_LOOSE",
    "JSON_MERGE",
    "JSON_MERGE_PATCH",
    "JSON_MERGE_PRESERVE",
    "JSON_OBJECT",
    "JSON_OBJECTAGG",
    "JSON_QUERY",
    "JSON_QUOTE",
    "JSON_REMOVE",
    "JSON_REPLACE",
    "JSON_SEARCH",
    "JSON_SET",
    "JSON_TABLE",
    "JSON_TYPE",
    "JSON_UNQUOTE",
    "JSON_VALID",
    "JSON_VALUE",
    "JSON_OVERLAPS",
    "JSON_EQUALS",
    "JSON_NORMALIZE",
    // Aggregates and window functions.
    "AVG",
    "BIT_AND",
    "BIT_OR",
    "BIT_XOR",
    "COUNT",
    "GROUP_CONCAT",
    "MAX",
    "MIN",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "SUM",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "ROW_NUMBER",
    "RANK",
    "DENSE_RANK",
    "PERCENT_RANK",
    "CUME_DIST",
    "NTILE",
    "LAG",
    "LEAD",
    "FIRST_VALUE",
    "LAST_VALUE",
    "NTH_VALUE",
    "MEDIAN",
    "PERCENTILE_CONT",
    "PERCENTILE_DISC",
];

/// Keywords (and type names in CAST/CONVERT) that may stand before `(`
/// without being a function call.
const KEYWORDS_BEFORE_PARENTHESIS: &[&str] = &[
    "SELECT",
    "FROM",
    "JOIN",
    "ON",
    "USING",
    "WHERE",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "IN",
    "EXISTS",
    "ANY",
    "SOME",
    "ALL",
    "AS",
    "BY",
    "HAVING",
    "OVER",
    "WINDOW",
    "PARTITION",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "WITH",
    "RECURSIVE",
    "VALUES",
    "VALUE",
    "ROW",
    "WHEN",
    "THEN",
    "ELSE",
    "IS",
    "LIKE",
    "BETWEEN",
    "REGEXP",
    "RLIKE",
    "ESCAPE",
    "DISTINCT",
    "LIMIT",
    "OFFSET",
    "LATERAL",
    "COLUMNS",
    "NESTED",
    "PATH",
    "BINARY",
    "DECIMAL",
    "NUMERIC",
    "DOUBLE",
    "FLOAT",
    "NCHAR",
    "VARCHAR",
    "DATETIME",
    "SIGNED",
    "UNSIGNED",
    "INTEGER",
    "INT",
    "STRAIGHT_JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "CROSS",
    "NATURAL",
    "ORDER",
    "GROUP",
];

/// The statement's first words that make it a query.
const QUERIES: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE"];

/// True when `tokens` (one statement the guard read as a read) is a plain
/// query whose text shows it cannot change the session.
pub(super) fn is_plain_read(tokens: &[Token]) -> bool {
    let first = tokens.iter().find(|t| !t.is_punct("("));
    if !first
        .and_then(Token::word)
        .is_some_and(|w| QUERIES.contains(&w))
    {
        return false;
    }
    tokens.iter().enumerate().all(|(i, token)| {
        if token.is_punct("@") || token.is_punct("@@") {
            // User variables (read or assigned), and system variables.
            return false;
        }
        let next = tokens.get(i + 1);
        match token.word() {
            Some("INTO" | "LOCK" | "SQL_CALC_FOUND_ROWS" | "NEXT" | "PREVIOUS") => false,
            Some("FOR") => !next
                .and_then(Token::word)
                .is_some_and(|w| w == "UPDATE" || w == "SHARE"),
            Some(word) if next.is_some_and(|t| t.is_punct("(")) => {
                // `db.name(` is a stored function, whatever its name.
                let qualified = i > 0 && tokens[i - 1].is_punct(".");
                !qualified
                    && (FUNCTIONS.contains(&word) || KEYWORDS_BEFORE_PARENTHESIS.contains(&word))
            }
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::statement::guard::{GuardContext, check_statement};

    fn plain(sql: &str) -> bool {
        check_statement(sql, GuardContext::default())
            .unwrap()
            .plain_read
    }

    #[test]
    fn plain_reads() {
        for sql in [
            "SELECT 1",
            "SELECT * FROM t WHERE id = ?",
            "select a, COUNT(*) from t group by a having count(*) > 1",
            "SELECT CONCAT(a, 'x'), JSON_EXTRACT(j, '$.a') FROM t",
            "WITH c AS (SELECT 1 AS x) SELECT x FROM c",
            "(SELECT 1) UNION (SELECT 2)",
            "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
            "SELECT CAST(x AS DECIMAL(10, 2)) FROM t",
            "SELECT '@x', 'GET_LOCK(1)', `weird@name` FROM t",
            "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
            "VALUES (1), (2)",
        ] {
            assert!(plain(sql), "{sql}");
        }
    }

    #[test]
    fn reads_that_may_leave_a_trace() {
        for sql in [
            "SELECT @x",
            "SELECT @y := 2",
            "SELECT @@session.sql_mode",
            "SELECT 1 INTO @v",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SELECT GET_LOCK('l', 0)",
            "SELECT RELEASE_LOCK('l')",
            "SELECT IS_USED_LOCK('l')",
            "SELECT LAST_INSERT_ID(5)",
            "SELECT LAST_INSERT_ID()",
            "SELECT NEXTVAL(seq)",
            "SELECT LASTVAL(seq)",
            "SELECT SETVAL(seq, 5)",
            "SELECT NEXT VALUE FOR seq",
            "SELECT SLEEP(1)",
            "SELECT BENCHMARK(10, 1)",
            "SELECT FOUND_ROWS()",
            "SELECT SQL_CALC_FOUND_ROWS * FROM t",
            "SELECT my_function(1)",
            "SELECT db.CONCAT(1)",
            "SELECT `db`.`concat`(1)",
            "SHOW TABLES",
            "DESCRIBE t",
            "INSERT INTO t VALUES (1)",
            "SET @x = 1",
            "CALL p()",
            "SELECT 1 /* CALL */",
        ] {
            let plain = check_statement(sql, GuardContext::default())
                .map(|c| c.plain_read)
                .unwrap_or(false);
            assert!(!plain, "{sql}");
        }
    }
}

//! Which statements ExecuteBatch may send several at a time as one
//! multi-row INSERT (see `service/batch_rows.rs`): a plain
//! `INSERT [INTO] t [(a, b, …)] VALUES (…)` whose one row holds nothing
//! that could read differently when the rows run in one statement instead
//! of one statement each.
use std::ops::Range;

use super::lexer::{self, Token, TokenKind};

/// Words a combinable row may hold (besides numbers): literals, `DEFAULT`,
/// and the casts the gateway writes for typed parameters
/// (`CAST(? AS DECIMAL(65,2))`, `CAST(? AS DATE)`). No function call, no
/// column, no subquery, no variable: those can read what earlier rows of
/// the same statement did, or the statement's start time.
const ROW_WORDS: [&str; 9] = [
    "NULL", "DEFAULT", "TRUE", "FALSE", "CAST", "AS", "DECIMAL", "DATE", "DATETIME",
];

/// Punctuation a combinable row may hold.
const ROW_PUNCT: [&str; 6] = ["?", ",", "(", ")", "-", "."];

/// The byte range of the row `(…)` of `sql` (a statement the guard
/// accepted, as it is sent) when `sql` is exactly
/// `INSERT [INTO] name[.name] [(column, …)] VALUE[S] (row)` and the row
/// holds only placeholders, literals, `DEFAULT` and casts, read the same
/// under every quoting mode; else `None`. No modifier (`IGNORE`, …), no
/// `PARTITION`, nothing after the row (`ON DUPLICATE KEY UPDATE`,
/// `RETURNING`).
pub fn values_row(sql: &str) -> Option<Range<usize>> {
    let mut agreed: Option<Range<usize>> = None;
    for mode in super::modes(sql, super::GuardContext::default()) {
        let lexed = lexer::lex(sql, mode).ok()?;
        let row = row_of(&lexed.tokens)?;
        match &agreed {
            None => agreed = Some(row),
            Some(first) if *first == row => {}
            Some(_) => return None,
        }
    }
    agreed
}

fn row_of(tokens: &[Token]) -> Option<Range<usize>> {
    let mut rest = tokens.iter();
    if rest.next()?.word()? != "INSERT" {
        return None;
    }
    let mut token = rest.next()?;
    if token.word() == Some("INTO") {
        token = rest.next()?;
    }
    token.word()?;
    token = rest.next()?;
    if token.is_punct(".") {
        rest.next()?.word()?;
        token = rest.next()?;
    }
    if token.is_punct("(") {
        loop {
            rest.next()?.word()?;
            token = rest.next()?;
            if token.is_punct(")") {
                break;
            }
            if !token.is_punct(",") {
                return None;
            }
        }
        token = rest.next()?;
    }
    if !matches!(token.word(), Some("VALUES" | "VALUE")) {
        return None;
    }
    let open = rest.next()?;
    if !open.is_punct("(") {
        return None;
    }
    let rest = rest.as_slice();
    let mut depth = 1usize;
    for (index, token) in rest.iter().enumerate() {
        let allowed = match token.kind {
            TokenKind::Str => true,
            TokenKind::Punct => ROW_PUNCT.contains(&token.text.as_str()),
            TokenKind::Word => {
                token.text.starts_with(|c: char| c.is_ascii_digit())
                    || ROW_WORDS.contains(&token.text.as_str())
            }
        };
        if !allowed {
            return None;
        }
        if token.is_punct("(") {
            depth += 1;
        } else if token.is_punct(")") {
            depth -= 1;
            if depth == 0 {
                // The row must be the statement's last token.
                return (index + 1 == rest.len()).then(|| open.offset..token.offset + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::values_row;

    fn row(sql: &str) -> Option<&str> {
        values_row(sql).map(|range| &sql[range])
    }

    #[test]
    fn plain_inserts_have_their_row() {
        assert_eq!(row("INSERT INTO t (a, b) VALUES (?, ?)"), Some("(?, ?)"));
        assert_eq!(
            row("insert t value (?,'x',NULL,-1.5)"),
            Some("(?,'x',NULL,-1.5)")
        );
        assert_eq!(
            row("INSERT INTO `d`.`t` VALUES (?, DEFAULT)"),
            Some("(?, DEFAULT)")
        );
        assert_eq!(
            row("INSERT INTO t (p, d) VALUES (CAST(? AS DECIMAL(65,2)),CAST(? AS DATE)) -- x"),
            Some("(CAST(? AS DECIMAL(65,2)),CAST(? AS DATE))")
        );
        assert_eq!(row("INSERT INTO t VALUES ('a)', ?)"), Some("('a)', ?)"));
    }

    #[test]
    fn anything_else_is_not_combined() {
        for sql in [
            "INSERT IGNORE INTO t VALUES (?)",
            "INSERT INTO t VALUES (?) ON DUPLICATE KEY UPDATE a = VALUES(a)",
            "INSERT INTO t VALUES (?) RETURNING id",
            "INSERT INTO t VALUES (?), (?)",
            "INSERT INTO t SELECT ?",
            "INSERT INTO t SET a = ?",
            "INSERT INTO t PARTITION (p0) VALUES (?)",
            "INSERT INTO t VALUES (NOW())",
            "INSERT INTO t VALUES (LAST_INSERT_ID())",
            "INSERT INTO t VALUES ((SELECT MAX(a) FROM t))",
            "INSERT INTO t VALUES (@x := ?)",
            "INSERT INTO t (a, b) VALUES (?, a + 1)",
            "INSERT INTO t VALUES (CURRENT_TIMESTAMP)",
            "REPLACE INTO t VALUES (?)",
            "UPDATE t SET a = ?",
            "INSERT INTO t VALUES ('it\\'s', ?)",
        ] {
            assert_eq!(row(sql), None, "{sql}");
        }
    }
}

//! The false-refusal rate on a corpus of ordinary statements that
//! SQLAlchemy, Django, Rails, Hibernate, Prisma and Drizzle emit
//! (`corpus.sql`; issue 19 item 6): below 1 %. tests/guard_vs_server.rs
//! runs a sample of it against the server.
use super::{GuardContext, SqlMode, check_statement, mode_dependent};

/// The corpus: (runs in a transaction, statement).
pub(crate) fn corpus() -> Vec<(bool, &'static str)> {
    include_str!("corpus.sql")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("--"))
        .map(|line| match line.strip_prefix("T ") {
            Some(statement) => (true, statement),
            None => (false, line),
        })
        .collect()
}

/// The corpus's statements that the gateway refuses on a session with the
/// server's default `sql_mode`: refused under every reading, or read
/// differently depending on the mode and refused under the default one
/// (the gateway reads the session's mode before it checks such a
/// statement again: see `statement::session_mode`).
fn refused_on_a_default_session() -> Vec<(&'static str, String)> {
    corpus()
        .into_iter()
        .filter_map(|(in_transaction, sql)| {
            let context = GuardContext {
                in_transaction,
                read_only: false,
                schema: false,
                sql_mode: None,
            };
            let default = GuardContext {
                sql_mode: Some(SqlMode::default()),
                ..context
            };
            let refusal = check_statement(sql, context).err()?;
            match mode_dependent(sql, context) {
                Some(_) => check_statement(sql, default).err(),
                None => Some(refusal),
            }
            .map(|e| (sql, e.to_string()))
        })
        .collect()
}

#[test]
fn false_refusals_stay_below_one_percent() {
    let corpus = corpus();
    assert!(corpus.len() >= 200, "{} statements", corpus.len());
    let refused = refused_on_a_default_session();
    let rate = refused.len() as f64 / corpus.len() as f64;
    eprintln!(
        "{} of {} refused: {refused:#?}",
        refused.len(),
        corpus.len()
    );
    assert!(
        rate < 0.01,
        "{} of {} refused ({:.1} %): {refused:#?}",
        refused.len(),
        corpus.len(),
        rate * 100.0
    );
    // Rails' backslash-escaped literals (`'O\'Brien'`) were the last ones,
    // refused while the session's sql_mode was not known.
    assert!(refused.is_empty(), "{refused:#?}");
}

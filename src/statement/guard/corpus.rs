//! The false-refusal rate on a corpus of ordinary statements that
//! SQLAlchemy, Django, Rails, Hibernate, Prisma and Drizzle emit
//! (`corpus.sql`; issue 19 item 6): below 1 %. tests/guard_vs_server.rs
//! runs a sample of it against the server.
use super::{GuardContext, check_statement};

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

#[test]
fn false_refusals_stay_below_one_percent() {
    let corpus = corpus();
    assert!(corpus.len() >= 200, "{} statements", corpus.len());
    let refused: Vec<_> = corpus
        .iter()
        .filter_map(|&(in_transaction, sql)| {
            let context = GuardContext {
                in_transaction,
                read_only: false,
                schema: false,
            };
            check_statement(sql, context)
                .err()
                .map(|e| (sql, e.to_string()))
        })
        .collect();
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
}

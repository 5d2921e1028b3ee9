//! Several statements with the same SQL, a plain `INSERT … VALUES (row)`,
//! as one multi-row INSERT (ExecuteBatch's `combine_inserts`).
use std::ops::Range;

use super::{Statement, guard};

impl Statement {
    /// The byte range of the row when the statement is a plain
    /// `INSERT … VALUES (row)` with parameters (see [`guard::values_row`]).
    pub fn values_row(&self) -> Option<Range<usize>> {
        if self.params.is_empty() || self.mode_dependent.is_some() {
            return None;
        }
        guard::values_row(&self.sql)
    }

    /// True when `other` has the same SQL text (parameters may differ).
    pub fn same_sql(&self, other: &Statement) -> bool {
        self.mode_dependent.is_none() && other.mode_dependent.is_none() && self.sql == other.sql
    }

    /// The number of parameters.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// The approximate size of the parameters on the wire.
    pub fn params_bytes(&self) -> usize {
        self.params.iter().map(|p| p.bin_len() as usize + 2).sum()
    }
}

/// One INSERT of the rows of `statements`, which all have the same SQL
/// whose row is at `row` (see [`Statement::values_row`]).
pub fn combine(statements: &[Statement], row: Range<usize>) -> Statement {
    let first = &statements[0];
    let row_text = &first.sql[row.clone()];
    let mut sql = String::with_capacity(row.start + (row_text.len() + 2) * statements.len());
    sql.push_str(&first.sql[..row.start]);
    let mut params = Vec::with_capacity(first.params.len() * statements.len());
    for (index, statement) in statements.iter().enumerate() {
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row_text);
        params.extend(statement.params.iter().cloned());
    }
    Statement {
        sql,
        params,
        may_change_identity: false,
        plain_read: false,
        calls: false,
        reads_leftovers: false,
        may_change_sql_mode: false,
        mode_dependent: None,
    }
}

//! Several statements with the same SQL, a plain `INSERT … VALUES (row)`,
//! as one multi-row INSERT (ExecuteBatch's `combine_inserts`).
use std::ops::Range;

use super::{Statement, StatementRules, guard};
use crate::{
    api::{self, value::Kind},
    errors::GatewayError,
    values,
};

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

    /// The statement a batch's next statement with the same SQL text as
    /// this one's (checked under the same `rules`) makes with `params`,
    /// without reading the text again: `None` when the guard must (a
    /// statement whose reading depends on the session's `sql_mode`) or
    /// when a parameter's type changes the text (a decimal or date
    /// placeholder is cast; see `typed_params`), so that
    /// [`Statement::new`] gives the same answer.
    pub fn again_with(
        &self,
        params: &[api::Value],
        rules: &StatementRules,
    ) -> Option<Result<Statement, GatewayError>> {
        let typed =
            |p: &api::Value| matches!(p.kind, Some(Kind::DecimalValue(_) | Kind::DateValue(_)));
        if self.mode_dependent.is_some()
            || params.len() > rules.max_params
            || params.len() != self.params.len()
            || params.iter().any(typed)
        {
            return None;
        }
        let converted = params
            .iter()
            .map(values::param_to_mysql)
            .collect::<Result<Vec<_>, _>>();
        Some(
            converted
                .map(|params| Statement {
                    sql: self.sql.clone(),
                    params,
                    may_change_identity: self.may_change_identity,
                    plain_read: self.plain_read,
                    calls: self.calls,
                    reads_leftovers: self.reads_leftovers,
                    may_change_sql_mode: self.may_change_sql_mode,
                    mode_dependent: None,
                })
                .map_err(GatewayError::from),
        )
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

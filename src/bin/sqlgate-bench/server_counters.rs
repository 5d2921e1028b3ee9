//! What the database was asked to do: MariaDB's global `Com_*` counters
//! (and `Questions`), read before and after each path of a workload.
//!
//! CPU time says how much harder the database works through the gateway;
//! these counters say why (a COM_RESET_CONNECTION here, a PREPARE there).
use std::collections::BTreeMap;

use mysql_async::{Conn, prelude::Queryable};

/// The counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct ServerCounters(BTreeMap<String, u64>);

impl ServerCounters {
    /// Reads them on `conn` (a connection of the bench's own).
    pub async fn read(conn: &mut Conn) -> Result<ServerCounters, mysql_async::Error> {
        let rows: Vec<(String, String)> = conn
            .query(
                "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Com\\_%' \
                 OR Variable_name = 'Questions'",
            )
            .await?;
        Ok(ServerCounters(
            rows.into_iter()
                .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
                .collect(),
        ))
    }

    /// Commands per operation from `self` until `later`, those that grew
    /// by at least one per hundred operations, biggest first. The reads of
    /// the counters themselves (`Com_show_status`) are left out.
    pub fn per_operation(&self, later: &ServerCounters, operations: u64) -> Vec<(String, f64)> {
        if operations == 0 {
            return Vec::new();
        }
        let mut grown: Vec<(String, f64)> = later
            .0
            .iter()
            .filter(|(name, _)| name.as_str() != "Com_show_status")
            .filter_map(|(name, after)| {
                let before = self.0.get(name).copied().unwrap_or(0);
                let per_op = after.saturating_sub(before) as f64 / operations as f64;
                (per_op >= 0.01).then(|| (short_name(name), per_op))
            })
            .collect();
        grown.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        grown
    }
}

/// `Com_stmt_execute` → `stmt_execute`; `Questions` stays.
fn short_name(name: &str) -> String {
    name.strip_prefix("Com_").unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(pairs: &[(&str, u64)]) -> ServerCounters {
        ServerCounters(pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect())
    }

    #[test]
    fn reports_what_grew_per_operation_biggest_first() {
        let before = counters(&[
            ("Com_stmt_execute", 10),
            ("Com_show_status", 1),
            ("Questions", 5),
        ]);
        let after = counters(&[
            ("Com_stmt_execute", 210),
            ("Com_stmt_prepare", 1),
            ("Com_show_status", 50),
            ("Questions", 405),
        ]);
        assert_eq!(
            before.per_operation(&after, 200),
            vec![("Questions".into(), 2.0), ("stmt_execute".into(), 1.0)]
        );
        assert!(before.per_operation(&after, 0).is_empty());
    }
}

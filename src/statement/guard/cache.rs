//! The guard's verdicts on statements it accepted, kept per statement text
//! and [`GuardContext`], so that the text of a statement sent again (an
//! application sends the same few texts over and over, as the connections'
//! statement caches show) is not lexed again under every quoting mode.
//!
//! The guard is a pure function of the text and the context (every input it
//! reads is in [`GuardContext`]; a new input belongs there, and so in the
//! key). Refusals are not kept: they are rare, and their errors are built
//! afresh. The cache is bounded in bytes (`--guard-cache-size`), counting
//! each text and a fixed overhead per entry; the least recently used texts
//! leave first. Size 0 turns it off.
use std::sync::{LazyLock, Mutex, MutexGuard};

use lru::LruCache;

use super::{Checked, GuardContext, StatementKind};

/// The default bound: a few thousand statement texts of ordinary length.
pub const DEFAULT_BYTES: usize = 1 << 20;

/// Bytes counted per entry besides its text (the map's and list's share,
/// and the verdicts).
const ENTRY_OVERHEAD: usize = 128;

/// Bytes counted per verdict of one text (one per context it was checked in).
const VERDICT_BYTES: usize = std::mem::size_of::<(GuardContext, Verdict)>();

/// What [`super::check_statement`] returned for an accepted text, with the
/// statement as offsets into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict {
    start: usize,
    end: usize,
    kind: StatementKind,
    may_change_identity: bool,
    plain_read: bool,
    may_change_sql_mode: bool,
}

impl Verdict {
    fn of(sql: &str, checked: &Checked<'_>) -> Option<Verdict> {
        // `checked.sql` is a slice of `sql`: its place in it.
        let start = (checked.sql.as_ptr() as usize).checked_sub(sql.as_ptr() as usize)?;
        let end = start + checked.sql.len();
        (sql.get(start..end)? == checked.sql).then_some(Verdict {
            start,
            end,
            kind: checked.kind,
            may_change_identity: checked.may_change_identity,
            plain_read: checked.plain_read,
            may_change_sql_mode: checked.may_change_sql_mode,
        })
    }

    fn checked<'a>(&self, sql: &'a str) -> Checked<'a> {
        Checked {
            sql: &sql[self.start..self.end],
            kind: self.kind,
            may_change_identity: self.may_change_identity,
            plain_read: self.plain_read,
            may_change_sql_mode: self.may_change_sql_mode,
        }
    }
}

/// Accepted statements' verdicts, by text, then by context.
pub struct VerdictCache {
    inner: Mutex<Inner>,
}

struct Inner {
    verdicts: LruCache<Box<str>, Vec<(GuardContext, Verdict)>>,
    /// Bytes counted for the entries now kept.
    bytes: usize,
    /// The most bytes to keep.
    capacity: usize,
}

impl Inner {
    fn entry_bytes(text: &str, verdicts: usize) -> usize {
        text.len() + ENTRY_OVERHEAD + verdicts * VERDICT_BYTES
    }

    /// Drops the least recently used entries until the bound holds.
    fn shrink(&mut self) {
        while self.bytes > self.capacity {
            let Some((text, verdicts)) = self.verdicts.pop_lru() else {
                break;
            };
            self.bytes -= Self::entry_bytes(&text, verdicts.len());
        }
    }
}

impl VerdictCache {
    /// An empty cache keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> VerdictCache {
        VerdictCache {
            inner: Mutex::new(Inner {
                verdicts: LruCache::unbounded(),
                bytes: 0,
                capacity,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the cache consistent: a panic elsewhere while
        // holding the lock cannot have broken it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the bound (dropping entries past it; 0 empties the cache and
    /// keeps it empty).
    pub fn set_capacity(&self, capacity: usize) {
        let mut inner = self.lock();
        inner.capacity = capacity;
        inner.shrink();
    }

    /// The verdict on `sql` in `context`: the one kept, else `check`'s
    /// (kept when it accepts the text).
    pub fn check<'a, E>(
        &self,
        sql: &'a str,
        context: GuardContext,
        check: impl FnOnce(&'a str, GuardContext) -> Result<Checked<'a>, E>,
    ) -> Result<Checked<'a>, E> {
        if let Some(verdict) = self.get(sql, context) {
            return Ok(verdict.checked(sql));
        }
        let checked = check(sql, context)?;
        if let Some(verdict) = Verdict::of(sql, &checked) {
            self.put(sql, context, verdict);
        }
        Ok(checked)
    }

    fn get(&self, sql: &str, context: GuardContext) -> Option<Verdict> {
        let mut inner = self.lock();
        let verdicts = inner.verdicts.get(sql)?;
        verdicts
            .iter()
            .find(|(kept, _)| *kept == context)
            .map(|(_, verdict)| *verdict)
    }

    fn put(&self, sql: &str, context: GuardContext, verdict: Verdict) {
        let mut inner = self.lock();
        if Inner::entry_bytes(sql, 1) > inner.capacity {
            return;
        }
        match inner.verdicts.get_mut(sql) {
            Some(verdicts) => {
                if verdicts.iter().any(|(kept, _)| *kept == context) {
                    return;
                }
                verdicts.push((context, verdict));
                inner.bytes += VERDICT_BYTES;
            }
            None => {
                inner.verdicts.put(sql.into(), vec![(context, verdict)]);
                inner.bytes += Inner::entry_bytes(sql, 1);
            }
        }
        inner.shrink();
    }

    /// Texts kept and bytes counted for them (for the tests).
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.verdicts.len(), inner.bytes)
    }
}

/// The process's cache, used by [`super::check_statement_cached`].
pub static VERDICTS: LazyLock<VerdictCache> = LazyLock::new(|| VerdictCache::new(DEFAULT_BYTES));

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::{
        errors::GatewayError,
        statement::guard::{SqlMode, check_statement},
    };

    const READ_WRITE: GuardContext = GuardContext {
        in_transaction: false,
        read_only: false,
        schema: false,
        sql_mode: None,
    };
    const READ_ONLY: GuardContext = GuardContext {
        read_only: true,
        ..READ_WRITE
    };
    const IN_TRANSACTION: GuardContext = GuardContext {
        in_transaction: true,
        ..READ_WRITE
    };

    /// Checks `sql` through `cache`, counting the guard's runs in `runs`.
    fn check<'a>(
        cache: &VerdictCache,
        sql: &'a str,
        context: GuardContext,
        runs: &Cell<usize>,
    ) -> Result<Checked<'a>, GatewayError> {
        cache.check(sql, context, |sql, context| {
            runs.set(runs.get() + 1);
            check_statement(sql, context)
        })
    }

    #[test]
    fn a_text_sent_again_in_the_same_context_is_not_checked_again() {
        let cache = VerdictCache::new(DEFAULT_BYTES);
        let runs = Cell::new(0);
        let sql = "SELECT id FROM t WHERE name = 'O''Brien' ;  ";
        let first = check(&cache, sql, READ_WRITE, &runs).unwrap();
        // A copy of the text elsewhere in memory: the verdict points into it.
        let again = sql.to_string();
        let second = check(&cache, &again, READ_WRITE, &runs).unwrap();
        assert_eq!(runs.get(), 1);
        assert_eq!(first, second);
        assert_eq!(second.sql, "SELECT id FROM t WHERE name = 'O''Brien'");
        assert_eq!(second.sql.as_ptr(), again.as_ptr());
        // A version comment's verdict is a slice that does not start at 0.
        let comment = "  /*!40101 SET NAMES utf8mb4 */;";
        let first = check(&cache, comment, READ_WRITE, &runs).unwrap();
        let second = check(&cache, comment, READ_WRITE, &runs).unwrap();
        assert_eq!((first, runs.get()), (second, 2));
    }

    #[test]
    fn every_input_of_the_guard_is_part_of_the_key() {
        let cache = VerdictCache::new(DEFAULT_BYTES);
        let runs = Cell::new(0);
        let update = "UPDATE t SET v = 1";
        assert!(check(&cache, update, READ_WRITE, &runs).is_ok());
        // Accepted for a read-write caller: still refused for a read-only one.
        let refused = check(&cache, update, READ_ONLY, &runs).unwrap_err();
        assert!(matches!(refused, GatewayError::ReadOnlyStatement(_)));
        let ddl = "CREATE TABLE t2 (id INT)";
        assert!(check(&cache, ddl, READ_WRITE, &runs).is_ok());
        let refused = check(&cache, ddl, IN_TRANSACTION, &runs).unwrap_err();
        assert!(matches!(refused, GatewayError::ImplicitCommit(_)));
        // Refusals are not kept: checked again each time.
        assert!(check(&cache, ddl, IN_TRANSACTION, &runs).is_err());
        assert_eq!(runs.get(), 5);
        // A text differing in one byte is another statement.
        assert!(check(&cache, "UPDATE t SET v = 2", READ_WRITE, &runs).is_ok());
        assert_eq!(runs.get(), 6);
        // Each context of a text keeps its own verdict.
        let select = "SELECT 1";
        for context in [READ_WRITE, READ_ONLY, IN_TRANSACTION] {
            check(&cache, select, context, &runs).unwrap();
        }
        for context in [READ_WRITE, READ_ONLY, IN_TRANSACTION] {
            check(&cache, select, context, &runs).unwrap();
        }
        assert_eq!(runs.get(), 9);
        // The session's sql_mode too: accepted under the default mode, the
        // same text is still refused where backslashes do not escape.
        let escaped = r"SELECT 'O\'Brien'";
        let default_mode = GuardContext {
            sql_mode: Some(SqlMode::default()),
            ..READ_WRITE
        };
        let no_escapes = GuardContext {
            sql_mode: Some(SqlMode {
                backslash_escapes: false,
                ..SqlMode::default()
            }),
            ..READ_WRITE
        };
        assert!(check(&cache, escaped, default_mode, &runs).is_ok());
        assert!(check(&cache, escaped, no_escapes, &runs).is_err());
        assert!(check(&cache, escaped, READ_WRITE, &runs).is_err());
        assert!(check(&cache, escaped, default_mode, &runs).is_ok());
        assert_eq!(runs.get(), 12);
    }

    #[test]
    fn the_cache_keeps_within_its_bound_dropping_the_least_recently_used() {
        let texts: Vec<String> = (0..10).map(|n| format!("SELECT {n:04}")).collect();
        let each = Inner::entry_bytes(&texts[0], 1);
        let cache = VerdictCache::new(3 * each);
        let runs = Cell::new(0);
        for text in &texts[..3] {
            check(&cache, text, READ_WRITE, &runs).unwrap();
        }
        assert_eq!(cache.usage(), (3, 3 * each));
        // Using the first makes the second the least recently used.
        check(&cache, &texts[0], READ_WRITE, &runs).unwrap();
        check(&cache, &texts[3], READ_WRITE, &runs).unwrap();
        assert_eq!((cache.usage(), runs.get()), ((3, 3 * each), 4));
        check(&cache, &texts[0], READ_WRITE, &runs).unwrap();
        check(&cache, &texts[2], READ_WRITE, &runs).unwrap();
        assert_eq!(runs.get(), 4, "the first and third are still kept");
        check(&cache, &texts[1], READ_WRITE, &runs).unwrap();
        assert_eq!(runs.get(), 5, "the second was dropped");
        // Many texts never take more than the bound.
        for text in &texts {
            check(&cache, text, READ_WRITE, &runs).unwrap();
            assert!(cache.usage().1 <= 3 * each);
        }
        // A text larger than the bound is checked but not kept.
        let long = format!("SELECT '{}'", "x".repeat(4 * each));
        check(&cache, &long, READ_WRITE, &runs).unwrap();
        assert!(cache.lock().verdicts.peek(long.as_str()).is_none());
        // A smaller bound drops entries at once; 0 turns the cache off.
        cache.set_capacity(each);
        assert_eq!(cache.usage(), (1, each));
        cache.set_capacity(0);
        assert_eq!(cache.usage(), (0, 0));
        let before = runs.get();
        check(&cache, &texts[0], READ_WRITE, &runs).unwrap();
        check(&cache, &texts[0], READ_WRITE, &runs).unwrap();
        assert_eq!(runs.get(), before + 2);
        assert_eq!(cache.usage(), (0, 0));
    }
}

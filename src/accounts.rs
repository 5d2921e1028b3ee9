//! Database accounts of principals: which principal logs in to the database
//! as which account (`--database-accounts-file`).
//!
//! With its own account, a principal is kept apart from the others by the
//! database itself: it can KILL and see in PROCESSLIST only its own
//! account's threads, and has the GRANTs its account has. The file has one
//! `user password principal` per line: the database user, its password
//! (no spaces), and the rest of the line is the principal, as the token file
//! or the client certificate's subject names it (it may contain spaces and
//! commas, e.g. `CN=orders, O=Example`). Lines starting with `#` are
//! comments. The file holds passwords: it must be readable by its owner only
//! (mode 0600). SIGHUP reloads it with the token file; a file that fails to
//! load leaves the previous mapping in force. Principals it does not name
//! use the shared accounts (`--database-url`, `--read-only-database-url`).
use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use crate::database::Credentials;

/// Why the accounts file could not be loaded. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum AccountsFileError {
    /// The file could not be read.
    #[error("cannot read the accounts file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Others than its owner may read it.
    #[error(
        "the accounts file {0} holds passwords but others than its owner may read it: chmod 600 it"
    )]
    Readable(PathBuf),
    /// A line is malformed.
    #[error("accounts file {path}, line {line}: {problem}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An account it maps holds global administrative privileges and
    /// --allow-admin-account is not given.
    #[error("{0}")]
    AdminAccount(String),
}

type Map = HashMap<String, Credentials>;

/// The principals mapped to database accounts; cheap to clone.
#[derive(Clone)]
pub struct AccountMap {
    /// The file it is read from; `None` for a mapping made by the gateway
    /// (the private server's per-principal accounts).
    path: Option<PathBuf>,
    map: Arc<RwLock<Arc<Map>>>,
}

impl AccountMap {
    /// Loads the accounts file.
    pub fn load(path: &Path) -> Result<AccountMap, AccountsFileError> {
        Ok(AccountMap {
            path: Some(path.to_path_buf()),
            map: Arc::new(RwLock::new(Arc::new(read_file(path)?))),
        })
    }

    /// A fixed mapping of principal names to accounts (the private
    /// server's accounts of the configured principals).
    pub fn fixed(entries: impl IntoIterator<Item = (String, Credentials)>) -> AccountMap {
        AccountMap {
            path: None,
            map: Arc::new(RwLock::new(Arc::new(entries.into_iter().collect()))),
        }
    }

    /// Reads the file again and puts it in force once `database` has checked
    /// the accounts it maps anew (new principals, changed accounts): one
    /// with global administrative privileges refuses the whole file (unless
    /// --allow-admin-account), and the previous mapping stays, as on any
    /// other error. Returns how many principals it maps.
    pub async fn reload_checked(
        &self,
        database: &crate::database::Database,
    ) -> Result<usize, AccountsFileError> {
        let Some(path) = &self.path else {
            return Ok(self.current().len());
        };
        let map = read_file(path)?;
        let previous = self.current();
        let changed: Vec<(String, Credentials)> = map
            .iter()
            .filter(|(principal, credentials)| previous.get(*principal) != Some(credentials))
            .map(|(principal, credentials)| (principal.clone(), credentials.clone()))
            .collect();
        database
            .refuse_admin_mapping(&changed)
            .await
            .map_err(AccountsFileError::AdminAccount)?;
        self.install(map)
    }

    /// Puts `map` in force; returns how many principals it maps.
    fn install(&self, map: Map) -> Result<usize, AccountsFileError> {
        let count = map.len();
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(count)
    }

    /// Reloads the file on every SIGHUP, for as long as the runtime runs,
    /// checking its accounts' privileges on `database` (see
    /// [`AccountMap::reload_checked`]).
    pub(crate) fn reload_on_sighup(
        &self,
        tasks: &crate::tasks::Tasks,
        database: crate::database::Database,
    ) {
        if self.path.is_none() {
            return;
        }
        let accounts = self.clone();
        tasks.spawn_loop(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot watch SIGHUP: the accounts file will not be reloaded");
                return;
            };
            while hangups.recv().await.is_some() {
                match accounts.reload_checked(&database).await {
                    Ok(count) => tracing::info!(principals = count, "accounts file reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "accounts file not reloaded; the previous mapping stays in force")
                    }
                }
            }
        });
    }

    /// Adds mappings made by the gateway (accounts it made on its private
    /// server for principals added while it runs).
    pub fn add(&self, entries: impl IntoIterator<Item = (String, Credentials)>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let mut updated = Map::clone(&map);
        updated.extend(entries);
        *map = Arc::new(updated);
    }

    /// True when the mapping comes from --database-accounts-file (not made
    /// by the gateway for its private server).
    pub fn is_file(&self) -> bool {
        self.path.is_some()
    }

    /// Every principal mapped, with its account.
    pub fn entries(&self) -> Vec<(String, Credentials)> {
        let mut entries: Vec<_> = self
            .current()
            .iter()
            .map(|(principal, credentials)| (principal.clone(), credentials.clone()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// The account `principal` logs in as, if it has one of its own.
    pub fn credentials_of(&self, principal: &str) -> Option<Credentials> {
        if principal.is_empty() {
            return None;
        }
        self.current().get(principal).cloned()
    }

    fn current(&self) -> Arc<Map> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn read_file(path: &Path) -> Result<Map, AccountsFileError> {
    let read_error = |source| AccountsFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(AccountsFileError::Readable(path.to_path_buf()));
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    parse(&text).map_err(|(line, problem)| AccountsFileError::Line {
        path: path.to_path_buf(),
        line,
        problem,
    })
}

/// Parses the file's text; errors name the line and the problem only.
fn parse(text: &str) -> Result<Map, (usize, &'static str)> {
    let mut map = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, char::is_whitespace);
        let (Some(user), Some(password), Some(principal)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err((index + 1, "expected: user password principal"));
        };
        let principal = principal.trim();
        if user.is_empty() || password.is_empty() || principal.is_empty() {
            return Err((index + 1, "expected: user password principal"));
        }
        let credentials = Credentials {
            user: user.to_string(),
            password: Some(password.to_string()),
        };
        if map.insert(principal.to_string(), credentials).is_some() {
            return Err((index + 1, "the same principal appears twice"));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_map_principals_to_accounts() {
        let map = parse(
            "# user password principal\n\napp_alice s3cret alice\napp_orders pw CN=orders, O=Example Corp\n",
        )
        .unwrap();
        assert_eq!(map["alice"].user, "app_alice");
        assert_eq!(map["alice"].password.as_deref(), Some("s3cret"));
        assert_eq!(map["CN=orders, O=Example Corp"].user, "app_orders");
        let debug = format!("{:?}", map["alice"]);
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn bad_lines_are_reported_by_number() {
        assert_eq!(parse("app_alice s3cret").unwrap_err().0, 1);
        assert_eq!(parse("# x\na b c\nd e c\n").unwrap_err().0, 3);
    }

    #[test]
    fn a_file_others_may_read_is_refused() {
        let path = std::env::temp_dir().join(format!("sqlgate-accounts-{}", std::process::id()));
        std::fs::write(&path, "app_alice s3cret alice\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = AccountMap::load(&path).err().unwrap().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        assert!(!error.contains("s3cret"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let map = AccountMap::load(&path).unwrap();
        assert_eq!(map.credentials_of("alice").unwrap().user, "app_alice");
        assert!(map.credentials_of("bob").is_none());
        std::fs::remove_file(&path).unwrap();
    }
}

//! The least-privilege accounts the gateway uses on its private server.
//!
//! The gateway never connects to its private server as root: it uses
//! `sqlgate`, with every privilege on database `sqlgate` and none on the
//! server (no SUPER, SHUTDOWN, FILE, PROCESS, GRANT), and read-only
//! principals use `sqlgate_reader`, which may only SELECT (and SHOW VIEW) in
//! that database. Every principal the gateway is configured with (its token
//! file) also gets an account of its own, named after a digest of its name
//! (`sqlgate_` and 16 hex digits), with the privileges of `sqlgate` or, for a
//! read-only principal, of `sqlgate_reader`: the server then keeps
//! principals apart (KILL, PROCESSLIST). Random passwords are made on first
//! use and kept in the data directory (mode 0600); the server's init file
//! (run as root at every start) creates the accounts or brings them up to
//! date (a principal's account is made again, so that a changed role leaves
//! no privilege behind).
use std::{
    collections::BTreeMap,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

/// The database the gateway serves on its private server.
pub const DATABASE: &str = "sqlgate";
/// The gateway's main account.
pub const READ_WRITE_USER: &str = "sqlgate";
/// The account of read-only principals.
pub const READ_ONLY_USER: &str = "sqlgate_reader";
/// Where the passwords are kept, in the data directory.
const PASSWORDS_FILE: &str = "sqlgate-accounts";

/// A principal's own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalAccount {
    /// The principal, as the token file names it.
    pub principal: String,
    /// The account's user name.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Granted only SELECT and SHOW VIEW.
    pub read_only: bool,
}

/// The passwords of the two shared accounts, and the principals' accounts.
#[derive(Debug, Clone)]
pub(super) struct Accounts {
    read_write_password: String,
    read_only_password: String,
    principals: Vec<PrincipalAccount>,
}

impl Accounts {
    /// Reads the passwords from the data directory, making those missing
    /// (on first use, or for a principal new to the configuration); an
    /// account per principal of `principals` (name, read-only).
    pub(super) fn load_or_create(
        data_dir: &Path,
        principals: &[(String, bool)],
    ) -> std::io::Result<Accounts> {
        let path = data_dir.join(PASSWORDS_FILE);
        let mut passwords = std::fs::read_to_string(&path)
            .map(|text| parse(&text))
            .unwrap_or_default();
        let before = passwords.len();
        let mut password_of = |user: &str| {
            passwords
                .entry(user.to_string())
                .or_insert_with(new_password)
                .clone()
        };
        let read_write_password = password_of(READ_WRITE_USER);
        let read_only_password = password_of(READ_ONLY_USER);
        let principals = principals
            .iter()
            .map(|(principal, read_only)| {
                let user = principal_user(principal);
                PrincipalAccount {
                    principal: principal.clone(),
                    password: password_of(&user),
                    user,
                    read_only: *read_only,
                }
            })
            .collect();
        if passwords.len() != before {
            let text: String = passwords
                .iter()
                .map(|(user, password)| format!("{user} {password}\n"))
                .collect();
            write_private(&path, &text)?;
        }
        Ok(Accounts {
            read_write_password,
            read_only_password,
            principals,
        })
    }

    /// The principals' own accounts.
    pub(super) fn principals(&self) -> &[PrincipalAccount] {
        &self.principals
    }

    /// SQL, run by the server as root at start, that creates the database and
    /// the accounts (or brings them up to date).
    pub(super) fn init_sql(&self) -> String {
        let account = |user: &str| format!("'{user}'@'localhost'");
        let rw = account(READ_WRITE_USER);
        let ro = account(READ_ONLY_USER);
        let (rw_password, ro_password) = (&self.read_write_password, &self.read_only_password);
        format!(
            "CREATE DATABASE IF NOT EXISTS `{DATABASE}`;\n\
             CREATE USER IF NOT EXISTS {rw} IDENTIFIED BY '{rw_password}';\n\
             ALTER USER {rw} IDENTIFIED BY '{rw_password}';\n\
             GRANT ALL PRIVILEGES ON `{DATABASE}`.* TO {rw};\n\
             CREATE USER IF NOT EXISTS {ro} IDENTIFIED BY '{ro_password}';\n\
             ALTER USER {ro} IDENTIFIED BY '{ro_password}';\n\
             GRANT SELECT, SHOW VIEW ON `{DATABASE}`.* TO {ro};\n{}",
            self.principals
                .iter()
                .flat_map(principal_statements)
                .map(|sql| sql + ";\n")
                .collect::<String>()
        )
    }

    /// SQL, run as root after [`Accounts::init_sql`], that creates the
    /// outcomes table of request ids and its view in `schema` (the view's
    /// definer is the main account) and grants the accounts what they need:
    /// the main account every privilege on the schema (it purges), each
    /// read-write principal's account SELECT and INSERT on the view only.
    /// Nothing when `schema` is empty.
    pub(super) fn outcomes_sql(&self, schema: &str) -> String {
        use crate::outcomes::table;
        if schema.is_empty() {
            return String::new();
        }
        let definer = format!("'{READ_WRITE_USER}'@'localhost'");
        let quoted = table::quoted(schema);
        let mut sql = format!(
            "CREATE DATABASE IF NOT EXISTS {quoted};\nGRANT ALL PRIVILEGES ON {quoted}.* TO {definer};\n"
        );
        for statement in table::create_statements(schema, Some(&definer)) {
            sql.push_str(&statement);
            sql.push_str(";\n");
        }
        for principal in self.principals.iter().filter(|p| !p.read_only) {
            sql.push_str(&format!(
                "GRANT SELECT, INSERT ON {quoted}.`{}` TO '{}'@'localhost';\n",
                table::VIEW,
                principal.user
            ));
        }
        sql
    }

    /// The user name and password of the main account, or of the read-only one.
    pub(super) fn credentials(&self, read_only: bool) -> (&'static str, &str) {
        if read_only {
            (READ_ONLY_USER, &self.read_only_password)
        } else {
            (READ_WRITE_USER, &self.read_write_password)
        }
    }
}

/// The statements that make `p`'s account anew (so that a changed role
/// leaves no privilege behind).
fn principal_statements(p: &PrincipalAccount) -> [String; 3] {
    let user = format!("'{}'@'localhost'", p.user);
    let grants = if p.read_only {
        "SELECT, SHOW VIEW"
    } else {
        "ALL PRIVILEGES"
    };
    [
        format!("DROP USER IF EXISTS {user}"),
        format!("CREATE USER {user} IDENTIFIED BY '{}'", p.password),
        format!("GRANT {grants} ON `{DATABASE}`.* TO {user}"),
    ]
}

/// Makes accounts on the running private server for principals that were
/// not configured when it started (a token file reloaded by SIGHUP), as
/// root over its unix socket; their passwords join the passwords file, and
/// the init file makes them again at every later start.
#[derive(Debug, Clone)]
pub struct AccountMaker {
    pub(super) data_dir: PathBuf,
    /// Root's URL over the server's unix socket.
    pub(super) root_url: String,
}

impl AccountMaker {
    /// Makes an account for each of `principals` (name, read-only);
    /// returns them.
    pub async fn add(
        &self,
        principals: &[(String, bool)],
    ) -> Result<Vec<PrincipalAccount>, super::EmbeddedError> {
        use mysql_async::prelude::Queryable;
        let accounts = Accounts::load_or_create(&self.data_dir, principals)
            .map_err(super::io_error("reading or creating the accounts file"))?;
        let mut conn = mysql_async::Conn::from_url(self.root_url.as_str()).await?;
        for principal in accounts.principals() {
            for sql in principal_statements(principal) {
                conn.query_drop(sql).await?;
            }
        }
        conn.disconnect().await?;
        Ok(accounts.principals)
    }
}

/// The `user password` lines of the passwords file (malformed ones are
/// left out, and made again).
fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(user, password)| is_user(user) && is_password(password))
        .map(|(user, password)| (user.to_string(), password.to_string()))
        .collect()
}

/// The user name of a principal's account: `sqlgate_` and the first 16 hex
/// digits of the SHA-256 of its name (any name, always a safe identifier).
pub fn principal_user(principal: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(principal.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sqlgate_{hex}")
}

/// User names are made of letters, digits and `_` only: safe in SQL.
fn is_user(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Passwords are made of hex digits only: safe in SQL and in URLs unquoted.
fn is_password(text: &str) -> bool {
    text.len() >= 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 128 random bits as 32 hex digits.
fn new_password() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file only its owner can read.
fn write_private(path: &PathBuf, contents: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_made_once_and_kept_private() {
        let dir = std::env::temp_dir().join(format!("sqlgate-accounts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let principals = [
            ("alice".to_string(), false),
            ("CN=rita, O=x".to_string(), true),
        ];
        let first = Accounts::load_or_create(&dir, &principals[..1]).unwrap();
        let again = Accounts::load_or_create(&dir, &principals).unwrap();
        assert_eq!(first.principals()[0], again.principals()[0], "kept");
        assert_eq!(again.principals()[1].user, principal_user("CN=rita, O=x"));
        let third = Accounts::load_or_create(&dir, &principals).unwrap();
        assert_eq!(third.principals(), again.principals());
        assert_eq!(first.credentials(false), again.credentials(false));
        assert_eq!(first.credentials(true), again.credentials(true));
        assert_ne!(first.credentials(false).1, first.credentials(true).1);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(PASSWORDS_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let sql = first.init_sql();
        assert!(
            sql.contains("GRANT SELECT, SHOW VIEW ON `sqlgate`.* TO 'sqlgate_reader'@'localhost'")
        );
        assert!(!sql.contains("*.*"), "no global privilege is granted");
        let sql = again.init_sql();
        let rita = principal_user("CN=rita, O=x");
        assert!(sql.contains(&format!(
            "GRANT SELECT, SHOW VIEW ON `sqlgate`.* TO '{rita}'@'localhost'"
        )));
        let alice = principal_user("alice");
        assert!(sql.contains(&format!(
            "GRANT ALL PRIVILEGES ON `sqlgate`.* TO '{alice}'@'localhost'"
        )));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

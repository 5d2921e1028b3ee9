//! The least-privilege accounts the gateway uses on its private server.
//!
//! The gateway never connects to its private server as root: it uses
//! `sqlgate`, with every privilege on database `sqlgate` and none on the
//! server (no SUPER, SHUTDOWN, FILE, PROCESS, GRANT), and read-only
//! principals use `sqlgate_reader`, which may only SELECT (and SHOW VIEW) in
//! that database. Their random passwords are made on first start and kept in
//! the data directory (mode 0600); the server's init file (run as root at
//! every start) creates or updates the accounts.
use std::{
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

/// The passwords of the two accounts.
#[derive(Debug, Clone)]
pub(super) struct Accounts {
    read_write_password: String,
    read_only_password: String,
}

impl Accounts {
    /// Reads the passwords from the data directory, making them on first use.
    pub(super) fn load_or_create(data_dir: &Path) -> std::io::Result<Accounts> {
        let path = data_dir.join(PASSWORDS_FILE);
        if let Some(accounts) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| parse(&text))
        {
            return Ok(accounts);
        }
        let accounts = Accounts {
            read_write_password: new_password(),
            read_only_password: new_password(),
        };
        write_private(
            &path,
            &format!(
                "{READ_WRITE_USER} {}\n{READ_ONLY_USER} {}\n",
                accounts.read_write_password, accounts.read_only_password
            ),
        )?;
        Ok(accounts)
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
             GRANT SELECT, SHOW VIEW ON `{DATABASE}`.* TO {ro};\n"
        )
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

fn parse(text: &str) -> Option<Accounts> {
    let mut read_write_password = None;
    let mut read_only_password = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some((READ_WRITE_USER, password)) if is_password(password) => {
                read_write_password = Some(password.to_string())
            }
            Some((READ_ONLY_USER, password)) if is_password(password) => {
                read_only_password = Some(password.to_string())
            }
            _ => {}
        }
    }
    Some(Accounts {
        read_write_password: read_write_password?,
        read_only_password: read_only_password?,
    })
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
        let first = Accounts::load_or_create(&dir).unwrap();
        let again = Accounts::load_or_create(&dir).unwrap();
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

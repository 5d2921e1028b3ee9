//! Who a pool logs in as: the server's URL with an account of its own
//! (credentials), and whether its sessions are READ ONLY from the start.
//!
//! Every distinct login gets a [`Backend`] of its own, made on first use and
//! kept (see [`Logins`]): its pool and control connections, so that the
//! server itself keeps principals with different accounts apart (KILL,
//! PROCESSLIST, GRANTs) and a KILL QUERY comes from the account that may
//! kill that connection.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::AtomicBool},
};

use super::{Backend, ConnectOptions};
use crate::{config::PoolConfig, tasks::Tasks};

/// A database account's user name and password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// The account's user name.
    pub user: String,
    /// Its password; `None`: none.
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// Never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Who a pool logs in as, and how its sessions start.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Login {
    /// The account; `None`: the one the server's URL names.
    pub credentials: Option<Credentials>,
    /// Sessions are READ ONLY (`SET SESSION TRANSACTION READ ONLY` in the
    /// pool's setup commands, run again after every reset).
    pub read_only: bool,
}

impl Login {
    /// The URL's own account, read-write sessions.
    pub const MAIN: Login = Login {
        credentials: None,
        read_only: false,
    };
}

impl ConnectOptions {
    /// The same server and database as another account.
    pub fn with_credentials(&self, credentials: &Option<Credentials>) -> ConnectOptions {
        match credentials {
            None => self.clone(),
            Some(credentials) => ConnectOptions {
                url: self.url.clone(),
                user: Some(credentials.user.clone()),
                password: credentials.password.clone(),
                ssl_ca: self.ssl_ca.clone(),
            },
        }
    }
}

/// The backends of one server, one per login, made on first use.
#[derive(Clone)]
pub(super) struct Logins {
    server: ConnectOptions,
    settings: PoolConfig,
    tasks: Tasks,
    /// Sessions of every login are READ ONLY (a replica).
    replica: bool,
    commit_tokens: bool,
    backends: Arc<Mutex<HashMap<Login, Backend>>>,
    /// Set for good when the server stopped being the primary the gateway
    /// writes to (see `primary`): transactions on its backends end.
    retired: Arc<AtomicBool>,
    /// The primary's checks, asked for by failures (a primary's logins).
    recheck: Option<super::primary::Recheck>,
}

impl Logins {
    /// The logins of `server`; `replica`: every session is READ ONLY.
    pub(super) fn new(
        server: ConnectOptions,
        settings: PoolConfig,
        tasks: Tasks,
        replica: bool,
        commit_tokens: bool,
    ) -> Logins {
        Logins {
            server,
            settings,
            tasks,
            replica,
            commit_tokens,
            backends: Default::default(),
            retired: Default::default(),
            recheck: None,
        }
    }

    /// The same logins, whose backends ask `recheck` for a check of the
    /// primary when a call on them fails as if the server went away.
    pub(super) fn watched_by(mut self, recheck: Option<super::primary::Recheck>) -> Logins {
        self.recheck = recheck;
        self
    }

    /// The server these logins log in to.
    pub(super) fn server(&self) -> &ConnectOptions {
        &self.server
    }

    /// The backend of `login`, made now if this is its first use (which
    /// opens no connection yet). Fails only on a URL the driver refuses.
    pub(super) fn backend(&self, login: &Login) -> Result<Backend, mysql_async::Error> {
        let mut login = login.clone();
        login.read_only |= self.replica;
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(backend) = backends.get(&login) {
            return Ok(backend.clone());
        }
        let connect = self.server.with_credentials(&login.credentials);
        let mut settings = self.settings;
        if login.credentials.is_some() {
            // Other accounts keep no idle connections (--pool-min is the
            // main account's): a gateway with many principals does not hold
            // --pool-min connections open for each.
            settings.min = 0;
        }
        let mut backend = Backend::new(&connect, settings, self.tasks.clone(), login.read_only)?;
        backend.commit_tokens = self.commit_tokens;
        backend.retired = self.retired.clone();
        backend.recheck = self.recheck.clone();
        backends.insert(login, backend.clone());
        Ok(backend)
    }

    /// Marks every backend of these logins, made or to be made, as no
    /// longer the primary's.
    pub(super) fn retire(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every backend made so far.
    pub(super) fn all(&self) -> Vec<Backend> {
        let backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        backends.values().cloned().collect()
    }
}

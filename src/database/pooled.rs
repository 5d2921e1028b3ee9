//! A pooled connection held for one autocommit call, and the ways a
//! connection can be given back.
use std::sync::Arc;

use mysql_async::Conn;

use super::Backend;
use crate::errors::GatewayError;

/// What to do with a connection when a call or a transaction lets go of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveBack {
    /// Its session provably is as the pool's reset would leave it (see
    /// `Session::check`): back to the pool without a reset, so that its
    /// statement cache is kept.
    Reuse,
    /// Its last command finished: back to the pool, which resets it
    /// (COM_RESET_CONNECTION) before the next user.
    Clean,
    /// Clean, except that a statement may have changed its default database
    /// or its active role, which COM_RESET_CONNECTION keeps: both are put
    /// back first (see `restore_identity`); closed if that fails.
    RestoreIdentity,
    /// A statement may still run on it (its call was dropped half-way): the
    /// statement is killed, then the pool reads what is left and resets it.
    Running,
    /// Its session state is in doubt: closed, never reused.
    Discard,
}

/// A pooled connection held for one autocommit call.
///
/// Dropped without [`PooledConn::release`], it belongs to a call cancelled
/// half-way: the statement still running on it is killed before the
/// connection goes back to the pool (which reads what is left and resets it).
pub struct PooledConn {
    conn: Option<Conn>,
    backend: Backend,
    /// Who the connection serves.
    principal: Arc<str>,
    /// How the connection is to be given back after a completed call.
    after: GiveBack,
}

impl PooledConn {
    /// Takes a connection of `backend`'s pool for `principal`, waiting at
    /// most the acquire timeout.
    pub async fn acquire(
        backend: &Backend,
        principal: &Arc<str>,
    ) -> Result<PooledConn, GatewayError> {
        Ok(PooledConn {
            conn: Some(backend.acquire(principal).await?),
            backend: backend.clone(),
            principal: principal.clone(),
            after: GiveBack::Clean,
        })
    }

    /// A connection of `backend` taken from its pool for `principal` already
    /// (a replica read, caught up as it asked).
    pub fn from_taken(conn: Conn, backend: &Backend, principal: &Arc<str>) -> PooledConn {
        PooledConn {
            conn: Some(conn),
            backend: backend.clone(),
            principal: principal.clone(),
            after: GiveBack::Clean,
        }
    }

    /// The connection.
    pub fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until released")
    }

    /// The backend the connection belongs to.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Notes that the connection needs more than the pool's reset before
    /// reuse; the strongest need wins.
    pub fn needs(&mut self, how: GiveBack) {
        self.after = stronger(self.after, how);
    }

    /// True when plain reads may skip the reset on this backend.
    pub fn session_reuse(&self) -> bool {
        self.backend.session_reuse
    }

    /// Lets the connection go back without a reset, unless something
    /// already asked for more than the pool's reset.
    pub fn skip_reset(&mut self) {
        if self.after == GiveBack::Clean {
            self.after = GiveBack::Reuse;
        }
    }

    /// Returns the connection after a call that ran to its end.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            match self.after {
                GiveBack::Reuse => self.backend.give_back_unreset(conn, self.principal.clone()),
                how => self.backend.give_back(conn, how),
            }
        }
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let how = stronger(self.after, GiveBack::Running);
            self.backend.give_back(conn, how);
        }
    }
}

/// The more cautious of two ways to give a connection back.
pub fn stronger(a: GiveBack, b: GiveBack) -> GiveBack {
    use GiveBack::*;
    match (a, b) {
        (Reuse, other) | (other, Reuse) => other,
        (Clean, other) | (other, Clean) => other,
        (Discard, _) | (_, Discard) => Discard,
        // A statement may still run on a connection whose identity is in
        // doubt: after the kill the session state is unknown, close it.
        (RestoreIdentity, Running) | (Running, RestoreIdentity) => Discard,
        (same, _) => same,
    }
}

#[cfg(test)]
mod tests {
    use super::{GiveBack::*, stronger};

    #[test]
    fn the_most_cautious_way_wins() {
        for how in [Reuse, Clean, RestoreIdentity, Running, Discard] {
            assert_eq!(stronger(Reuse, how), how);
            assert_eq!(stronger(how, Reuse), how);
            if how != Reuse {
                assert_eq!(stronger(Clean, how), how);
                assert_eq!(stronger(how, Clean), how);
            }
            assert_eq!(stronger(how, how), how);
            assert_eq!(stronger(Discard, how), Discard);
        }
        assert_eq!(stronger(RestoreIdentity, Running), Discard);
        assert_eq!(stronger(Running, RestoreIdentity), Discard);
    }
}

//! Places for requests being received: a pool shared by all, of which one
//! connection and one principal may each hold at most a share.
use std::{
    collections::HashMap,
    hash::Hash,
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::GatewayError;

/// One semaphore per key (a connection, a principal), made on first use and
/// forgotten when no request of that key holds or waits for a place.
struct Shares<K> {
    per_key: usize,
    map: Mutex<HashMap<K, (Arc<Semaphore>, usize)>>,
}

impl<K: Hash + Eq + Clone> Shares<K> {
    fn new(per_key: usize) -> Arc<Self> {
        Arc::new(Shares {
            per_key,
            map: Mutex::new(HashMap::new()),
        })
    }

    /// The semaphore of `key`, kept in the map while the handle lives.
    fn handle(self: &Arc<Self>, key: K) -> ShareHandle<K> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(key.clone())
            .or_insert_with(|| (Arc::new(Semaphore::new(self.per_key)), 0));
        entry.1 += 1;
        ShareHandle {
            semaphore: entry.0.clone(),
            shares: self.clone(),
            key,
        }
    }

    /// Keys with a semaphore (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// A use of one key's semaphore; see [`Shares::handle`].
struct ShareHandle<K: Hash + Eq> {
    semaphore: Arc<Semaphore>,
    shares: Arc<Shares<K>>,
    key: K,
}

impl<K: Hash + Eq> Drop for ShareHandle<K> {
    fn drop(&mut self) {
        let mut map = self.shares.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// A held share of one key: the permit, then the handle (dropped in this
/// order).
struct Share<K: Hash + Eq> {
    _permit: OwnedSemaphorePermit,
    _handle: ShareHandle<K>,
}

impl<K: Hash + Eq + Clone> Share<K> {
    /// The share at once, if one is free.
    fn try_acquire(handle: ShareHandle<K>) -> Option<Share<K>> {
        let permit = handle.semaphore.clone().try_acquire_owned().ok()?;
        Some(Share {
            _permit: permit,
            _handle: handle,
        })
    }

    async fn acquire(handle: ShareHandle<K>) -> Share<K> {
        let permit = handle
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("share semaphores are never closed");
        Share {
            _permit: permit,
            _handle: handle,
        }
    }
}

/// A place held by a request being received; given back when dropped.
pub(super) struct Place {
    _global: OwnedSemaphorePermit,
    _connection: Option<Share<SocketAddr>>,
    _principal: Option<Share<Arc<str>>>,
}

/// The principal of a request, once authentication has named it: the
/// limiter puts an empty slot in each request's extensions, the
/// authenticating interceptor fills it, and the request's places are then
/// counted against that principal's share too.
#[derive(Clone, Default)]
pub struct PrincipalSlot(Arc<OnceLock<Arc<str>>>);

impl PrincipalSlot {
    /// Names the request's principal (the first name given counts).
    pub fn set(&self, name: Arc<str>) {
        let _ = self.0.set(name);
    }

    fn get(&self) -> Option<Arc<str>> {
        self.0.get().cloned()
    }
}

/// Which limit a request waiting for a place is waiting for, for the error
/// it gets when the wait is too long.
#[derive(Clone, Default)]
pub(super) struct Waiting(Arc<AtomicU8>);

const WAITING_PRINCIPAL: u8 = 0;
const WAITING_CONNECTION: u8 = 1;
const WAITING_GLOBAL: u8 = 2;

/// A pool of places with its per-connection and per-principal shares.
pub(super) struct Budget {
    global: Arc<Semaphore>,
    max: usize,
    /// The flag (or description) of `max`.
    flag: &'static str,
    per_connection: Arc<Shares<SocketAddr>>,
    per_principal: Option<Arc<Shares<Arc<str>>>>,
}

impl Budget {
    /// `max` places in all, at most `per_connection` per connection and, when
    /// given, `per_principal` per named principal.
    pub(super) fn new(
        max: usize,
        flag: &'static str,
        per_connection: usize,
        per_principal: Option<usize>,
    ) -> Arc<Budget> {
        Arc::new(Budget {
            global: Arc::new(Semaphore::new(max)),
            max,
            flag,
            per_connection: Shares::new(per_connection.clamp(1, max)),
            per_principal: per_principal.map(|n| Shares::new(n.clamp(1, max))),
        })
    }

    /// Waits for a place: first the connection's share, then the
    /// principal's, then one of the pool. A request waiting for a share
    /// holds nothing that others could use: waiting for its connection's
    /// share it holds nothing, waiting for its principal's only a share of
    /// its own connection (whose other requests would wait for the
    /// principal's share too).
    pub(super) async fn acquire(
        self: Arc<Self>,
        connection: Option<SocketAddr>,
        principal: PrincipalSlot,
        waiting: Waiting,
    ) -> Place {
        let connection = match connection {
            Some(address) => {
                waiting.0.store(WAITING_CONNECTION, Ordering::Relaxed);
                Some(Share::acquire(self.per_connection.handle(address)).await)
            }
            None => None,
        };
        let principal = match (principal.get(), &self.per_principal) {
            (Some(name), Some(shares)) => {
                waiting.0.store(WAITING_PRINCIPAL, Ordering::Relaxed);
                Some(Share::acquire(shares.handle(name)).await)
            }
            _ => None,
        };
        waiting.0.store(WAITING_GLOBAL, Ordering::Relaxed);
        let global = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Place {
            _global: global,
            _connection: connection,
            _principal: principal,
        }
    }

    /// A place at once, when the connection's share, the principal's and
    /// the pool all have one free; `None` when one of them has none (then
    /// [`Self::acquire`] waits for it). A free place is one no request
    /// waits for (tokio's semaphores hand released permits to their
    /// waiters first), so taking it here does not pass anyone in the queue.
    pub(super) fn try_acquire(
        &self,
        connection: Option<SocketAddr>,
        principal: &PrincipalSlot,
    ) -> Option<Place> {
        let connection = match connection {
            Some(address) => Some(Share::try_acquire(self.per_connection.handle(address))?),
            None => None,
        };
        let principal = match (principal.get(), &self.per_principal) {
            (Some(name), Some(shares)) => Some(Share::try_acquire(shares.handle(name))?),
            _ => None,
        };
        let global = self.global.clone().try_acquire_owned().ok()?;
        Some(Place {
            _global: global,
            _connection: connection,
            _principal: principal,
        })
    }

    /// The error of a request that waited too long at `waiting`.
    pub(super) fn too_many(&self, waiting: &Waiting) -> GatewayError {
        match waiting.0.load(Ordering::Relaxed) {
            WAITING_PRINCIPAL => GatewayError::TooManyRequests {
                flag: "--max-requests-per-principal",
                limit: self.per_principal.as_ref().map_or(0, |s| s.per_key),
            },
            WAITING_CONNECTION => GatewayError::TooManyRequests {
                flag: "--max-requests-per-connection",
                limit: self.per_connection.per_key,
            },
            _ => GatewayError::TooManyRequests {
                flag: self.flag,
                limit: self.max,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_connection_and_a_principal_hold_at_most_their_share() {
        let budget = Budget::new(4, "--max-concurrent-requests", 2, Some(3));
        let one: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let two: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let anyone = PrincipalSlot::default();
        let alice = PrincipalSlot::default();
        alice.set("alice".into());
        let acquire = |address, principal: &PrincipalSlot| {
            let waiting = Waiting::default();
            let future = budget
                .clone()
                .acquire(Some(address), principal.clone(), waiting.clone());
            async move {
                (
                    tokio::time::timeout(Duration::from_millis(50), future)
                        .await
                        .ok(),
                    waiting,
                )
            }
        };
        let a = acquire(one, &anyone).await.0.unwrap();
        let _b = acquire(one, &anyone).await.0.unwrap();
        // The connection's share is taken; another connection gets one.
        let (refused, waiting) = acquire(one, &anyone).await;
        assert!(refused.is_none());
        assert!(matches!(
            budget.too_many(&waiting),
            GatewayError::TooManyRequests {
                flag: "--max-requests-per-connection",
                limit: 2
            }
        ));
        let _c = acquire(two, &alice).await.0.unwrap();
        let _d = acquire(two, &alice).await.0.unwrap();
        // Connection two's share is taken too; the pool is full.
        let (refused, waiting) = acquire(two, &alice).await;
        assert!(refused.is_none());
        assert!(matches!(
            budget.too_many(&waiting),
            GatewayError::TooManyRequests {
                flag: "--max-requests-per-connection",
                ..
            }
        ));
        drop(a);
        let three: SocketAddr = "127.0.0.1:3".parse().unwrap();
        let _e = acquire(three, &alice).await.0.unwrap();
        // Alice holds her 3 places; a fourth waits for her share.
        let (refused, waiting) = acquire(three, &alice).await;
        assert!(refused.is_none());
        assert!(matches!(
            budget.too_many(&waiting),
            GatewayError::TooManyRequests {
                flag: "--max-requests-per-principal",
                limit: 3
            }
        ));
        // Keys in use only: connections 1, 2, 3 and alice.
        assert_eq!(budget.per_connection.len(), 3);
        drop((_b, _c, _d, _e));
        assert_eq!(budget.per_connection.len(), 0);
        assert_eq!(budget.per_principal.as_ref().unwrap().len(), 0);
    }
}

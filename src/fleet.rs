//! A fleet of gateway instances that behave as one: each knows its peers,
//! and a call for a transaction another instance owns is forwarded to it.
//!
//! The peer set comes from `--peers` (host:port entries, or a DNS name that
//! resolves to every instance), resolved again every `--peer-refresh`. A
//! transaction id names its owner's address (see
//! [`crate::transactions::TransactionId`]); a call is forwarded only to an
//! address in the current peer set, so a crafted id can never make the
//! gateway connect elsewhere. A forwarded call carries [`FORWARDED_BY`] and is
//! never forwarded again.
use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{
    config::{FleetConfig, PeerTls},
    tasks::Tasks,
    transactions::TransactionId,
};

/// The metadata key a forwarded call carries: the forwarding instance's address.
pub const FORWARDED_BY: &str = "x-sqlgate-forwarded-by";

/// The most metadata (an HTTP/2 header list: names, values and 32 bytes per
/// entry) every instance accepts in a request. Forwarded calls are checked
/// against it before they leave, so the owner never refuses one at the
/// HTTP level.
pub const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// HTTP/2 flow-control window of one forwarded stream, bytes: what an
/// unread forwarded ExecuteStream can hold of its connection's window.
const PEER_STREAM_WINDOW: u32 = 1024 * 1024;

/// HTTP/2 flow-control window of a connection to a peer: the most a
/// protocol allows, so that streams whose clients read slowly (each holding
/// at most [`PEER_STREAM_WINDOW`]) cannot exhaust it for the others.
const PEER_CONNECTION_WINDOW: u32 = (1 << 31) - 1;

/// Departed peers remembered, so that their transactions' ids get
/// "owner unavailable" rather than "not found".
const DEPARTED_REMEMBERED: usize = 1024;

/// Where a call for a transaction goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This instance serves it (it owns the transaction, the id names no
    /// owner, or the call was forwarded here already).
    Local,
    /// Forward it to the owner, a current peer.
    Forward(SocketAddr),
    /// The owner was a peer and is gone: its transactions were rolled back
    /// by the database when its connections closed.
    OwnerGone(SocketAddr),
}

/// This instance's view of the fleet; cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    /// How peers reach this instance.
    me: SocketAddr,
    entries: Vec<String>,
    connect_timeout: Duration,
    /// The peers as last resolved (this instance may be among them).
    current: RwLock<Arc<HashSet<SocketAddr>>>,
    /// Peers that were in the set once and are not any more, oldest first.
    departed: Mutex<VecDeque<SocketAddr>>,
    /// Two HTTP/2 connections per peer, made on first use: one for unary
    /// calls, one for streams (whose unread data must never hold up a
    /// Commit or Rollback).
    channels: Mutex<HashMap<(SocketAddr, Calls), Channel>>,
    /// How to reach peers over TLS, when this gateway serves TLS.
    tls: Option<ClientTlsConfig>,
}

impl Fleet {
    /// A fleet as `config` describes it, `me` being this instance's address.
    /// Resolves the peers once before returning (an entry that does not
    /// resolve yet is tried again at every refresh) and keeps resolving them
    /// every `config.refresh` in a task of `tasks`. Fails when the peer TLS
    /// files cannot be read.
    pub async fn start(
        config: &FleetConfig,
        me: SocketAddr,
        tasks: &Tasks,
    ) -> Result<Fleet, String> {
        let tls = config.tls.as_ref().map(client_tls).transpose()?;
        let fleet = Fleet {
            inner: Arc::new(Inner {
                me,
                entries: config.peers.clone(),
                connect_timeout: config.connect_timeout,
                current: RwLock::new(Arc::new(HashSet::new())),
                departed: Mutex::new(VecDeque::new()),
                channels: Mutex::new(HashMap::new()),
                tls,
            }),
        };
        fleet.refresh().await;
        let (refreshing, every) = (fleet.clone(), config.refresh);
        tasks.spawn_loop(async move {
            loop {
                tokio::time::sleep(every).await;
                refreshing.refresh().await;
            }
        });
        tracing::info!(advertise = %me, peers = ?config.peers, tls = config.tls.is_some(), "forwarding calls within the fleet");
        Ok(fleet)
    }

    /// This instance's address, as named in its transaction ids.
    pub fn me(&self) -> SocketAddr {
        self.inner.me
    }

    /// Resolves every entry again and replaces the peer set. An entry that
    /// fails to resolve keeps the addresses it had, so that a DNS hiccup
    /// does not turn live owners into departed ones.
    async fn refresh(&self) {
        let previous = self.current();
        let mut resolved = HashSet::new();
        for entry in &self.inner.entries {
            match tokio::net::lookup_host(entry.as_str()).await {
                Ok(addresses) => resolved.extend(addresses),
                Err(e) => {
                    tracing::warn!(peer = %entry, error = %e, "cannot resolve a peer; keeping what it resolved to before");
                    let port = entry
                        .rsplit_once(':')
                        .and_then(|(_, p)| p.parse::<u16>().ok());
                    resolved.extend(previous.iter().filter(|a| Some(a.port()) == port));
                }
            }
        }
        if resolved == *previous {
            return;
        }
        let mut departed = lock(&self.inner.departed);
        for gone in previous.difference(&resolved) {
            tracing::info!(peer = %gone, "a peer left the fleet");
            departed.push_back(*gone);
            lock(&self.inner.channels).retain(|(peer, _), _| peer != gone);
        }
        departed.retain(|address| !resolved.contains(address));
        while departed.len() > DEPARTED_REMEMBERED {
            departed.pop_front();
        }
        for joined in resolved.difference(&previous) {
            tracing::info!(peer = %joined, "a peer joined the fleet");
        }
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(resolved);
    }

    fn current(&self) -> Arc<HashSet<SocketAddr>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where a call on `transaction_id` goes; `forwarded` says it was
    /// forwarded here already.
    pub fn route(&self, transaction_id: &str, forwarded: bool) -> Route {
        let Some(owner) = TransactionId::parse(transaction_id).and_then(|id| id.owner()) else {
            return Route::Local;
        };
        if owner == self.inner.me || forwarded {
            return Route::Local;
        }
        if self.current().contains(&owner) {
            return Route::Forward(owner);
        }
        if lock(&self.inner.departed).contains(&owner) {
            return Route::OwnerGone(owner);
        }
        // Not an address of this fleet: nothing to forward to, and nothing
        // here by that id either ("not found").
        Route::Local
    }

    /// The connection to `peer` for unary calls (made on first use, kept
    /// while it is a peer).
    pub fn channel(&self, peer: SocketAddr) -> Channel {
        self.channel_for(peer, Calls::Unary)
    }

    /// The connection to `peer` for forwarded streams, apart from the one
    /// for unary calls.
    pub fn stream_channel(&self, peer: SocketAddr) -> Channel {
        self.channel_for(peer, Calls::Streams)
    }

    fn channel_for(&self, peer: SocketAddr, calls: Calls) -> Channel {
        let mut channels = lock(&self.inner.channels);
        channels
            .entry((peer, calls))
            .or_insert_with(|| {
                let scheme = if self.inner.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                let mut endpoint = Endpoint::from_shared(format!("{scheme}://{peer}"))
                    .expect("a socket address makes a valid URI")
                    .connect_timeout(self.inner.connect_timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .initial_stream_window_size(PEER_STREAM_WINDOW)
                    .initial_connection_window_size(PEER_CONNECTION_WINDOW);
                if let Some(tls) = &self.inner.tls {
                    endpoint = endpoint
                        .tls_config(tls.clone())
                        .expect("checked when the fleet started");
                }
                endpoint.connect_lazy()
            })
            .clone()
    }
}

/// Which calls a connection to a peer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Calls {
    Unary,
    Streams,
}

/// The TLS client configuration for peers: their CA, the name to verify,
/// and (with mutual TLS) this gateway's own certificate as client identity.
fn client_tls(peer: &PeerTls) -> Result<ClientTlsConfig, String> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&peer.ca)?));
    if let Some(name) = &peer.name {
        tls = tls.domain_name(name.clone());
    }
    if let Some((cert, key)) = &peer.identity {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    // Checked once here, so that making a channel later cannot fail.
    Endpoint::from_static("https://127.0.0.1:1")
        .tls_config(tls.clone())
        .map_err(|e| format!("peer TLS: {e}"))?;
    Ok(tls)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::Epoch;

    fn config(peers: &[&str]) -> FleetConfig {
        FleetConfig {
            peers: peers.iter().map(|p| p.to_string()).collect(),
            advertise_address: None,
            refresh: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(1),
            tls: None,
        }
    }

    fn id_owned_by(owner: &str) -> String {
        TransactionId::new_random(Some((owner.parse().unwrap(), Epoch::new()))).to_string()
    }

    #[tokio::test]
    async fn calls_go_to_the_owner_only_when_it_is_a_peer() {
        let tasks = Tasks::default();
        let me: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let fleet = Fleet::start(&config(&["127.0.0.1:7001", "127.0.0.1:7002"]), me, &tasks)
            .await
            .unwrap();
        assert_eq!(
            fleet.route(&id_owned_by("127.0.0.1:7001"), false),
            Route::Local
        );
        let peer = "127.0.0.1:7002".parse().unwrap();
        assert_eq!(
            fleet.route(&id_owned_by("127.0.0.1:7002"), false),
            Route::Forward(peer)
        );
        // Forwarded already: never again.
        assert_eq!(
            fleet.route(&id_owned_by("127.0.0.1:7002"), true),
            Route::Local
        );
        // A crafted owner outside the fleet: served here (and not found).
        assert_eq!(
            fleet.route(&id_owned_by("10.9.9.9:443"), false),
            Route::Local
        );
        // Ids without an owner, and malformed ones.
        assert_eq!(fleet.route(&"a".repeat(32), false), Route::Local);
        assert_eq!(fleet.route("nonsense-127.0.0.1:7002", false), Route::Local);
        tasks.stop(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_departed_peer_is_remembered() {
        let tasks = Tasks::default();
        let me: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let fleet = Fleet::start(&config(&["127.0.0.1:7002"]), me, &tasks)
            .await
            .unwrap();
        let gone: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        // The same fleet, re-resolved after the peer left.
        let mut inner_entries = config(&["127.0.0.1:7003"]);
        inner_entries.refresh = Duration::from_secs(3600);
        let shrunk = Fleet {
            inner: Arc::new(Inner {
                me,
                entries: inner_entries.peers,
                connect_timeout: Duration::from_secs(1),
                current: RwLock::new(fleet.current()),
                departed: Mutex::new(VecDeque::new()),
                channels: Mutex::new(HashMap::new()),
                tls: None,
            }),
        };
        shrunk.refresh().await;
        assert_eq!(
            shrunk.route(&id_owned_by("127.0.0.1:7002"), false),
            Route::OwnerGone(gone)
        );
        assert_eq!(
            shrunk.route(&id_owned_by("127.0.0.1:7003"), false),
            Route::Forward("127.0.0.1:7003".parse().unwrap())
        );
        tasks.stop(Duration::from_secs(1)).await;
    }
}

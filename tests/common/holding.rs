//! A proxy in front of the test's database server that holds back the
//! gateway's packets that contain a pattern (a KILL, a COMMIT, a ROLLBACK...)
//! until the test lets them go: it makes races deterministic, and plays a
//! server that stopped answering one command.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Notify, watch};

use super::{TestGateway, Verdict, fresh_database, judging_proxy};

/// What the gateway sends to stop a statement.
pub const KILL: &[u8] = b"KILL QUERY ";

/// The COM_QUERY packet of `COMMIT`: length 7, sequence id 0, command 3.
pub const COMMIT: &[u8] = b"\x07\x00\x00\x00\x03COMMIT";

/// A unix-socket proxy in front of the test's database server that, while
/// holding, holds back every packet from the gateway that contains the
/// pattern, until [`HoldingProxy::release`].
pub struct HoldingProxy {
    /// The database's URL through the proxy.
    pub url: String,
    pattern: Arc<Mutex<Option<&'static [u8]>>>,
    held: Arc<Notify>,
    open: watch::Sender<bool>,
}

impl HoldingProxy {
    pub fn start(name: &str, database: &str, direct_url: &str) -> HoldingProxy {
        let pattern: Arc<Mutex<Option<&'static [u8]>>> = Arc::default();
        let held = Arc::new(Notify::new());
        let (open, _) = watch::channel(true);
        let judge = {
            let (pattern, held, open) = (pattern.clone(), held.clone(), open.clone());
            move |write: &[u8]| {
                let hold = pattern
                    .lock()
                    .unwrap()
                    .is_some_and(|p| write.windows(p.len()).any(|w| w == p));
                let (held, mut open) = (held.clone(), open.subscribe());
                async move {
                    if hold {
                        held.notify_one();
                        if open.wait_for(|open| *open).await.is_err() {
                            return Verdict::Close;
                        }
                    }
                    Verdict::Forward
                }
            }
        };
        HoldingProxy {
            url: judging_proxy(name, database, direct_url, judge),
            pattern,
            held,
            open,
        }
    }

    /// Holds back every packet containing `pattern` from now on.
    pub fn hold(&self, pattern: &'static [u8]) {
        self.open.send_replace(false);
        *self.pattern.lock().unwrap() = Some(pattern);
    }

    /// Waits until a packet is held back.
    pub async fn wait_held(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.held.notified())
            .await
            .expect("a packet is held back within 10 s");
    }

    /// Lets the held packets (and later ones) through.
    pub fn release(&self) {
        *self.pattern.lock().unwrap() = None;
        self.open.send_replace(true);
    }
}

/// A gateway on a fresh database with table `t`, reached through a
/// [`HoldingProxy`] (the gateway's control connections, which send KILL,
/// too).
pub async fn gateway_behind_proxy(
    name: &str,
    adjust: impl FnOnce(&mut sqlgate::config::Config),
) -> (TestGateway, HoldingProxy) {
    let (database, direct_url) = fresh_database().await;
    let mut conn = mysql_async::Conn::from_url(direct_url.as_str())
        .await
        .unwrap();
    mysql_async::prelude::Queryable::query_drop(&mut conn, "CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let proxy = HoldingProxy::start(name, &database, &direct_url);
    let gateway = TestGateway::start_on(database, proxy.url.clone(), adjust).await;
    (gateway, proxy)
}

/// `message` with the client's deadline header alone (no timer of the
/// client's own, which would answer CANCELLED on its side when a loaded
/// machine delays the answer): what the client sees is what the gateway said.
pub fn with_deadline<T>(message: T, grpc_timeout: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("grpc-timeout", grpc_timeout.parse().unwrap());
    request
}

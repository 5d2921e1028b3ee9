//! --database-tcp-keepalive reaches the sockets of the gateway's TCP
//! connections to the database: the pool's, the control (KILL) connections'
//! and the replicas'. The gateway runs in this process, so its sockets are
//! read with getsockopt (no timing).
mod common;

use std::{os::fd::RawFd, time::Duration};

use common::*;

/// A TCP listener on 127.0.0.1 that forwards every connection to the unix
/// socket of the test's database server; returns its port.
async fn tcp_to_unix(socket: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut server) = tokio::net::UnixStream::connect(&socket).await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    port
}

/// An integer socket option of `fd`.
fn option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &raw mut len) };
    (rc == 0).then_some(value)
}

/// The IPv4 peer port of socket `fd`, if it is one.
fn peer_port(fd: RawFd) -> Option<u16> {
    // SAFETY: a zeroed sockaddr_in is valid; getpeername writes at most `len` bytes.
    let mut address: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let rc = unsafe { libc::getpeername(fd, (&raw mut address).cast(), &raw mut len) };
    (rc == 0 && address.sin_family == libc::AF_INET as libc::sa_family_t)
        .then(|| u16::from_be(address.sin_port))
}

/// The keepalive settings (on, idle seconds, probe count, user timeout in
/// ms) of this process's sockets connected to `port`.
fn keepalive_of_sockets_to(port: u16) -> Vec<(bool, i32, i32, i32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        if peer_port(fd) != Some(port) {
            continue;
        }
        let on = option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE);
        let idle = option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE);
        let count = option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT);
        let user_timeout = option(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT);
        if let (Some(on), Some(idle), Some(count), Some(user_timeout)) =
            (on, idle, count, user_timeout)
        {
            found.push((on != 0, idle, count, user_timeout));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keepalive_flag_reaches_every_tcp_connection_to_the_database() {
    let (database, direct_url) = fresh_database().await;
    let socket = direct_url
        .split_once("socket=")
        .expect("the test server is reached on a unix socket")
        .1
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let (primary, replica) = (tcp_to_unix(socket.clone()).await, tcp_to_unix(socket).await);
    // Over TCP, and staying on it (the driver would switch to the local
    // server's unix socket otherwise).
    let url = |port: u16| format!("mysql://root@127.0.0.1:{port}/{database}?prefer_socket=false");
    let gateway = TestGateway::start_on(database.clone(), url(primary), |config| {
        config.pool.tcp_keepalive = Duration::from_secs(7);
        // Not a replica: it never comes into rotation, but is checked (on
        // a control connection of its own) all the same.
        config.database.replica_urls = vec![url(replica)];
        config.database.replicas.check_interval = Duration::from_millis(100);
    })
    .await;
    let mut client = gateway.client.clone();
    client
        .execute(statement_in("SELECT 1", ""))
        .await
        .expect("a call over TCP");
    let expected = (true, 7, 3, 14_000);
    let mut seen = (Vec::new(), Vec::new());
    let all_there = eventually(Duration::from_secs(10), || {
        seen = (
            keepalive_of_sockets_to(primary),
            keepalive_of_sockets_to(replica),
        );
        // The pool's connection and the control connection (start-up
        // checks, KILL); the replica's check connection.
        let ready = seen.0.len() >= 2 && !seen.1.is_empty();
        async move { ready }
    })
    .await;
    assert!(
        all_there,
        "connections to the primary and the replica: {seen:?}"
    );
    for settings in seen.0.iter().chain(&seen.1) {
        assert_eq!(*settings, expected, "{seen:?}");
    }
    gateway.shut_down().await;
}

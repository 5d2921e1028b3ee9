//! Raw HTTP/2 streams held open against a gateway process, and its resident
//! memory: for the tests of what open streams cost.
use std::time::{Duration, Instant};

use prost::Message;
use tonic::codegen::http;

/// Resident memory of process `pid`, bytes.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The largest RSS of `pid` over the next `during`.
pub async fn peak_rss(pid: u32, during: Duration) -> u64 {
    let mut peak = 0;
    let started = Instant::now();
    while started.elapsed() < during {
        peak = peak.max(rss(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak
}

/// The HEADERS of a gRPC call of `method` (`package.Service/Method`).
pub fn grpc_request(address: &str, method: &str) -> http::Request<()> {
    http::Request::post(format!("http://{address}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// `message` framed as one gRPC message.
pub fn grpc_frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// What a stream sends after its HEADERS.
#[derive(Clone)]
pub enum Sent {
    /// Nothing: the stream stays open, idle.
    Nothing,
    /// This whole message (framed), which ends the request; the responses
    /// are never read.
    Message(Vec<u8>),
}

/// Streams held open on HTTP/2 connections of their own; dropping it closes
/// the connections (the gateway sees them go away).
pub struct OpenStreams {
    _streams: Vec<(
        h2::client::ResponseFuture,
        h2::SendStream<prost::bytes::Bytes>,
    )>,
    drivers: Vec<tokio::task::JoinHandle<Result<(), h2::Error>>>,
}

impl Drop for OpenStreams {
    fn drop(&mut self) {
        for driver in &self.drivers {
            driver.abort();
        }
    }
}

/// Opens `per_connection` streams on each of `connections` new HTTP/2
/// connections: calls of `method` (`package.Service/Method`) that send
/// HEADERS and then what `sent` says, and last a health check. Returns once
/// the gateway has taken them all.
pub async fn open_streams(
    address: &str,
    method: &str,
    sent: Sent,
    connections: usize,
    per_connection: usize,
) -> OpenStreams {
    let mut drivers = Vec::new();
    let mut open = Vec::new();
    let mut pings = Vec::new();
    for _ in 0..connections {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        drivers.push(tokio::spawn(connection));
        for _ in 1..per_connection {
            client = client.ready().await.unwrap();
            let (response, mut body) = client
                .send_request(grpc_request(address, method), false)
                .unwrap();
            if let Sent::Message(frame) = &sent {
                body.send_data(frame.clone().into(), true).unwrap();
            }
            open.push((response, body));
        }
        // Streams are taken in order: once a health check sent last is
        // answered, the gateway has taken every stream before it.
        client = client.ready().await.unwrap();
        let health = "grpc.health.v1.Health/Check";
        pings.push(
            client
                .send_request(grpc_request(address, health), true)
                .unwrap()
                .0,
        );
    }
    for ping in pings {
        tokio::time::timeout(Duration::from_secs(30), ping)
            .await
            .expect("the gateway takes the streams")
            .unwrap();
    }
    OpenStreams {
        _streams: open,
        drivers,
    }
}

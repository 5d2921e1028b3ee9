//! Spans exported with OpenTelemetry (`--otlp-endpoint`): gateway processes
//! export to a collector (the OTLP/gRPC trace service from
//! opentelemetry-proto, served here) a span per RPC that continues the
//! caller's W3C `traceparent`, across forwarding; spans queued at SIGTERM
//! still go out; a collector that is down costs calls nothing.
mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
    trace::v1::{Span, span::SpanKind, status::StatusCode},
};
use sqlgate::api::CommitRequest;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// Batches go out every 100 ms instead of every 5 s (the SDK's default).
const QUICK_EXPORT: &[(&str, &str)] = &[("OTEL_BSP_SCHEDULE_DELAY", "100")];

/// A span as received, with the resource's service name.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    fn attribute(&self, key: &str) -> Option<AnyValue> {
        self.span
            .attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(|attribute| attribute.value.clone()?.value)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/gRPC collector on 127.0.0.1:0 that keeps every span it gets.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| match attribute.value.clone()?.value {
                    Some(AnyValue::StringValue(name)) => Some(name),
                    _ => None,
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans.into_iter().map(|span| Received {
                    service: service.clone(),
                    span,
                }));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves it; returns it and the endpoint URL for `--otlp-endpoint`.
    async fn start() -> (Collector, String) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (collector, format!("http://{address}"))
    }

    /// The spans received so far named `name`.
    fn named(&self, name: &str) -> Vec<Received> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|received| received.span.name == name)
            .cloned()
            .collect()
    }

    /// Waits until `count` spans named `name` have arrived; returns them.
    async fn wait_for(&self, name: &str, count: usize) -> Vec<Received> {
        let arrived = eventually(Duration::from_secs(15), || async {
            self.named(name).len() >= count
        })
        .await;
        assert!(
            arrived,
            "{count} {name} spans arrive: {:?}",
            self.named(name)
        );
        self.named(name)
    }
}

/// A call carrying the caller's trace context.
fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    request
        .metadata_mut()
        .insert("tracestate", "mesh=abc".parse().unwrap());
    request
}

/// Each RPC's span continues the caller's trace, with its method, outcome
/// and rows; a forwarded call's span on the owner is a child of the span on
/// the instance that forwarded it; a call without trace context starts a
/// trace of its own, whose id its log lines carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_continue_the_callers_trace_across_instances() {
    let (collector, endpoint) = Collector::start().await;
    let (_, url) = fresh_database().await;
    let instances = GatewayProcess::fleet(2, QUICK_EXPORT, |listen, peers| {
        let args = ["--database-url", &url, "--listen", listen, "--peers", peers];
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args.extend(["--otlp-endpoint".into(), endpoint.clone()]);
        args
    });
    let (mut a, mut b) = (instances[0].client().await, instances[1].client().await);

    // An autocommit call, and one that fails.
    a.execute(traced(statement_in("SELECT * FROM seq_1_to_3", "")))
        .await
        .unwrap();
    let failed = a
        .execute(traced(statement_in("SELECT * FROM no_such_table", "")))
        .await
        .expect_err("no such table");
    let spans = collector.wait_for("sqlgate.v1.Database/Execute", 2).await;
    for span in &spans {
        assert_eq!(span.trace_id(), TRACE_ID, "{span:?}");
        assert_eq!(span.parent_span_id(), CALLER_SPAN_ID, "{span:?}");
        assert_eq!(span.span.kind, SpanKind::Server as i32);
        assert_eq!(span.service, "sqlgate");
        assert_eq!(
            span.attribute("rpc.method"),
            Some(AnyValue::StringValue("Execute".into()))
        );
        assert_eq!(span.span.trace_state, "mesh=abc");
    }
    let ok = spans
        .iter()
        .find(|span| span.attribute("sqlgate.rows") == Some(AnyValue::IntValue(3)))
        .expect("the successful call's span counts its rows");
    assert_eq!(
        ok.attribute("rpc.grpc.status_code"),
        Some(AnyValue::IntValue(0))
    );
    let error = spans
        .iter()
        .find(|span| span.attribute("rpc.grpc.status_code") != Some(AnyValue::IntValue(0)))
        .expect("the failed call's span");
    assert_eq!(
        error.attribute("rpc.grpc.status_code"),
        Some(AnyValue::IntValue(failed.code() as i64))
    );
    assert_eq!(
        error.span.status.as_ref().map(|status| status.code),
        Some(StatusCode::Error as i32)
    );

    // Begun on A, executed through B: B forwards to A.
    let tx = begin_on(&mut a).await;
    b.execute(traced(statement_in("SELECT 1", &tx)))
        .await
        .unwrap();
    b.commit(CommitRequest {
        transaction_id: tx,
        ..Default::default()
    })
    .await
    .unwrap();
    let spans = collector.wait_for("sqlgate.v1.Database/Execute", 4).await;
    let forwarder = spans
        .iter()
        .find(|span| span.attribute("sqlgate.forwarded_to").is_some())
        .expect("the forwarding instance's span says where it forwarded");
    assert_eq!(
        forwarder.attribute("sqlgate.forwarded_to"),
        Some(AnyValue::StringValue(instances[0].address.clone()))
    );
    assert_eq!(forwarder.parent_span_id(), CALLER_SPAN_ID);
    let owner = spans
        .iter()
        .find(|span| span.parent_span_id() == forwarder.span_id())
        .expect("the owner's span is a child of the forwarder's");
    assert_eq!(owner.trace_id(), TRACE_ID);

    // No trace context: a trace of its own, named in the call's log lines.
    let commits = collector.wait_for("sqlgate.v1.Database/Commit", 2).await;
    let root = commits
        .iter()
        .find(|span| span.span.parent_span_id.is_empty())
        .expect("an untraced call's span is a root");
    assert_ne!(root.trace_id(), TRACE_ID);
    let logged = format!("\"trace_id\":\"{}\"", root.trace_id());
    assert!(
        eventually(Duration::from_secs(5), || async {
            instances
                .iter()
                .any(|instance| instance.log().contains(&logged))
        })
        .await,
        "the log names the trace the span started"
    );
}

/// Spans still queued at SIGTERM are exported before the process exits
/// (the default 5 s batch delay is left as it is here), and a collector
/// that does not answer costs calls nothing: they succeed, and a warning
/// says spans are being dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_spans_go_out_at_shutdown_and_a_dead_collector_costs_nothing() {
    let (collector, endpoint) = Collector::start().await;
    let (_, url) = fresh_database().await;
    let gateway =
        GatewayProcess::start(["--database-url", &url, "--otlp-endpoint", &endpoint], &[]);
    let mut db = gateway.client().await;
    db.execute(traced(statement_in("SELECT 1", "")))
        .await
        .unwrap();
    assert_eq!(gateway.stop().await, Some(0));
    let spans = collector.named("sqlgate.v1.Database/Execute");
    assert_eq!(spans.len(), 1, "exported at shutdown: {spans:?}");

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let gateway = GatewayProcess::start(
        ["--database-url", &url, "--otlp-endpoint", &nobody],
        QUICK_EXPORT,
    );
    let mut db = gateway.client().await;
    for _ in 0..20 {
        db.execute(statement_in("SELECT 1", "")).await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(15), || async {
            gateway.log().contains("could not export spans")
        })
        .await,
        "the failed export is logged"
    );
    db.execute(statement_in("SELECT 1", "")).await.unwrap();
    assert_eq!(gateway.stop().await, Some(0));
}

/// A malformed endpoint is refused at start-up, with the flag named.
#[test]
fn a_malformed_endpoint_is_refused() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["serve", "--otlp-endpoint", "collector:4317"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--otlp-endpoint"), "{stderr}");
}

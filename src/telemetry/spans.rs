//! OpenTelemetry: the W3C trace context a call arrives with
//! (`traceparent`/`tracestate`), the span each RPC exports over OTLP/gRPC
//! once [`install`] has run (`--otlp-endpoint`), and the context a forwarded
//! call carries on to the owner, so that its span is a child of this one.
//!
//! Without an endpoint nothing is created per call beyond reading the
//! header: the tracer is a `OnceLock` that stays empty.
use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{
        Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider,
    },
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter},
};
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};

/// The span of one RPC, as exported.
pub(super) type ExportedSpan = opentelemetry_sdk::trace::Span;

/// How long one export to the collector may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tracer RPC spans are started with, once [`install`] has run.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The caller's span, from its `traceparent` (and `tracestate`) if valid.
pub(super) fn caller(metadata: &MetadataMap) -> Option<SpanContext> {
    let header = metadata.get("traceparent")?.to_str().ok()?;
    // The propagator also takes ids shorter than W3C's 32 and 16 lowercase
    // hex digits (it parses them as numbers); such a header is invalid.
    let mut fields = header.trim().split('-').skip(1);
    let lowercase_hex = |field: Option<&str>, len: usize| {
        field.is_some_and(|f| {
            f.len() == len && f.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    };
    if !(lowercase_hex(fields.next(), 32) && lowercase_hex(fields.next(), 16)) {
        return None;
    }
    let context = TraceContextPropagator::new().extract(&Incoming(metadata));
    let caller = context.span().span_context().clone();
    caller.is_valid().then_some(caller)
}

/// Starts the exported span of RPC `method`, a child of `caller`'s span;
/// `None` when spans are not exported.
pub(super) fn start(
    method: &'static str,
    transaction_id: &str,
    caller: Option<&SpanContext>,
) -> Option<ExportedSpan> {
    let tracer = TRACER.get()?;
    let parent = match caller {
        Some(caller) => Context::new().with_remote_span_context(caller.clone()),
        None => Context::new(),
    };
    let mut attributes = vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", "sqlgate.v1.Database"),
        KeyValue::new("rpc.method", method),
    ];
    if !transaction_id.is_empty() {
        attributes.push(KeyValue::new(
            "sqlgate.transaction_id",
            transaction_id.to_string(),
        ));
    }
    let builder = tracer
        .span_builder(format!("sqlgate.v1.Database/{method}"))
        .with_kind(SpanKind::Server)
        .with_attributes(attributes);
    Some(tracer.build_with_context(builder, &parent))
}

/// Ends `span` with the call's outcome.
pub(super) fn end(mut span: ExportedSpan, rows: u64, error: Option<&tonic::Status>) {
    span.set_attribute(KeyValue::new("sqlgate.rows", rows as i64));
    let code = error.map_or(tonic::Code::Ok, tonic::Status::code);
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code as i64));
    if let Some(status) = error {
        span.set_status(Status::error(status.message().to_string()));
    }
    span.end();
}

/// Puts `span`'s context in `metadata` as `traceparent`/`tracestate`.
pub(super) fn inject(span: &SpanContext, metadata: &mut MetadataMap) {
    let context = Context::new().with_remote_span_context(span.clone());
    TraceContextPropagator::new().inject_context(&context, &mut Outgoing(metadata));
}

/// Starts exporting RPC spans to the OTLP/gRPC collector at `endpoint`
/// (e.g. `http://localhost:4317`). Must run on the tokio runtime, which
/// carries the exports. The service name is `sqlgate` unless
/// `OTEL_SERVICE_NAME` says otherwise; `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_EXPORTER_OTLP_HEADERS` apply too.
pub fn install(endpoint: &str) -> Result<SpanExport, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot export spans to {endpoint}: {e}"))?;
    let exporter = OnTokio {
        exporter: Arc::new(exporter),
        runtime: tokio::runtime::Handle::current(),
        endpoint: endpoint.to_string(),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("sqlgate");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    TRACER
        .set(provider.tracer("sqlgate"))
        .map_err(|_| "spans are already exported by another gateway in this process".to_string())?;
    Ok(SpanExport { provider })
}

/// The span export [`install`] started; [`SpanExport::shut_down`] sends
/// what is queued and stops it.
pub struct SpanExport {
    provider: SdkTracerProvider,
}

impl SpanExport {
    /// Exports the spans still queued (waiting at most the export timeout)
    /// and stops exporting.
    pub async fn shut_down(self) {
        let provider = self.provider;
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = stopped {
            tracing::warn!(%error, "the last spans may not have been exported");
        }
    }
}

/// The OTLP exporter, run on the tokio runtime: the SDK's batch processor
/// exports from a thread of its own, where tonic's channel has no reactor
/// (a known pitfall: "there is no reactor running").
#[derive(Debug)]
struct OnTokio {
    exporter: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: tokio::runtime::Handle,
    endpoint: String,
    /// Whether the last export failed, so that a collector that is down is
    /// logged once, not once per batch.
    failing: Arc<AtomicBool>,
}

impl SpanExporter for OnTokio {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let exporter = self.exporter.clone();
        let (endpoint, failing) = (self.endpoint.clone(), self.failing.clone());
        let exported = self.runtime.spawn(async move {
            let spans = batch.len();
            let result = exporter.export(batch).await;
            match &result {
                Err(error) if !failing.swap(true, Ordering::Relaxed) => {
                    tracing::warn!(%endpoint, %error, spans, "could not export spans: dropping them until the collector answers");
                }
                Ok(()) if failing.swap(false, Ordering::Relaxed) => {
                    tracing::info!(%endpoint, "exporting spans again");
                }
                _ => {}
            }
            result
        });
        async move {
            exported
                .await
                .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while the provider is built, before any export shares it.
        if let Some(exporter) = Arc::get_mut(&mut self.exporter) {
            exporter.set_resource(resource);
        }
    }
}

/// A call's metadata, read by the propagator.
struct Incoming<'a>(&'a MetadataMap);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// A forwarded call's metadata, written by the propagator.
struct Outgoing<'a>(&'a mut MetadataMap);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

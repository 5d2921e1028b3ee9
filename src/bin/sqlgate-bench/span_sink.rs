//! An OTLP/gRPC collector that counts the spans it receives, for measuring
//! the gateway with span export on (`--gateway-otlp`). It runs in the
//! benchmark's process, so its CPU counts as the client's.
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

/// The collector; spans are counted and dropped.
#[derive(Clone, Default)]
pub struct SpanSink {
    spans: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for SpanSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl SpanSink {
    /// Serves a sink on 127.0.0.1:0; returns it and its endpoint URL.
    pub async fn start() -> std::io::Result<(SpanSink, String)> {
        let sink = SpanSink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(sink.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Ok((sink, endpoint))
    }

    /// Spans received so far.
    pub fn received(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

//! Logs: structured, to stderr, text or JSON, filtered by `log_level`.
//!
//! Traces, when `otlp_endpoint` is set: every `tracing` span at INFO or above
//! (the request spans, with the events inside them) is also exported over
//! OTLP/HTTP (protobuf) to `<otlp_endpoint>/v1/traces`, batched on the tokio
//! runtime. The export has its own filter, so `log_level` only governs stderr.
//! A W3C `traceparent` on an incoming request continues that trace
//! (see `http::middleware::observe`).

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::Config;

/// How long the exit waits for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`init`] set up that must be shut down on the way out.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter (at most
    /// [`FLUSH_TIMEOUT`]). Call once, after the server has stopped.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The batch processor blocks its caller until its task on the runtime
        // has exported, so block a thread of our own, not a runtime worker. A
        // plain thread (not spawn_blocking) so a stuck collector cannot hold up
        // the runtime's exit past the timeout.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("otlp-shutdown".into())
            .spawn(move || {
                let _ = tx.send(provider.shutdown());
            });
        if let Err(e) = spawned {
            tracing::warn!("trace export: cannot flush: {e}");
            return;
        }
        match tokio::time::timeout(FLUSH_TIMEOUT, rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("trace export: flushing at exit: {e}"),
            Ok(Err(_)) => tracing::warn!("trace export: flushing at exit failed"),
            Err(_) => tracing::warn!(
                "trace export: spans not flushed within {}s",
                FLUSH_TIMEOUT.as_secs()
            ),
        }
    }
}

/// Installs the process-wide subscriber: logs always, trace export when
/// configured. Must run inside the tokio runtime (the exporter's batch task
/// is spawned on it).
pub fn init(cfg: &Config) -> Telemetry {
    let filter = EnvFilter::try_new(&cfg.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if cfg.log_format == "json" {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> =
        vec![logs.with_filter(filter).boxed()];

    let mut provider = None;
    let mut export_error = None;
    if !cfg.otlp_endpoint.is_empty() {
        match tracer_provider(cfg) {
            Ok(p) => {
                let tracer = p.tracer("hearth");
                layers.push(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(export_filter())
                        .boxed(),
                );
                opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
                provider = Some(p);
            }
            Err(e) => export_error = Some(e),
        }
    }

    if let Err(e) = tracing_subscriber::registry().with(layers).try_init() {
        eprintln!("logging already initialised: {e}");
    }
    if let Some(e) = export_error {
        tracing::error!("trace export is off: {e}");
    } else if provider.is_some() {
        tracing::info!(endpoint = %traces_url(&cfg.otlp_endpoint), "exporting traces over OTLP/HTTP");
    }
    Telemetry { provider }
}

/// `<endpoint>/v1/traces`, as the OTLP spec builds it from a base endpoint.
fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

fn tracer_provider(cfg: &Config) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(&cfg.otlp_endpoint))
        .build()
        .map_err(|e| e.to_string())?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let resource = Resource::builder()
        .with_service_name(cfg.otlp_service_name.clone())
        .with_attribute(KeyValue::new("service.instance.id", instance_id()))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// Spans and events worth exporting: INFO and above, but nothing from the
/// exporter's own stack (its diagnostics would feed back into the export).
fn export_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("h2", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
}

/// A random UUID (v4): the node id is only known once the server has
/// started, after tracing is up.
fn instance_id() -> String {
    let mut b = rand::random::<u128>().to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn instance_ids_are_uuids() {
        let a = instance_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, instance_id());
    }
}

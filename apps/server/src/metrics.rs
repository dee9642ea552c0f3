//! Prometheus metrics, one registry per server instance (so tests can run
//! several servers in one process).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub events: IntCounterVec,
    /// The last bus log position the gateway routed.
    pub gateway_log_position: IntGauge,
    /// Gateway resumes by where they were served and how they ended.
    pub gateway_resumes: IntCounterVec,
    /// Mails by template and outcome (queued, sent, retried, failed, bounced).
    pub mail: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "hearth_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["method", "route", "status"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "hearth_http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let events = IntCounterVec::new(
            Opts::new(
                "hearth_events_total",
                "Domain events by type and outcome (published, dropped)",
            ),
            &["type", "outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let gateway_log_position = IntGauge::new(
            "hearth_gateway_log_position",
            "The last bus log position the gateway routed",
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let gateway_resumes = IntCounterVec::new(
            Opts::new(
                "hearth_gateway_resumes_total",
                "Gateway resumes by where (local, remote) and outcome (resumed, invalid)",
            ),
            &["where", "outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let mail = IntCounterVec::new(
            Opts::new(
                "hearth_mail_total",
                "Mails by template (kind) and outcome: queued, sent, retried, failed (out of retries), bounced (refused for good)",
            ),
            &["kind", "outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        for m in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(events.clone()),
            Box::new(gateway_log_position.clone()),
            Box::new(gateway_resumes.clone()),
            Box::new(mail.clone()),
        ] {
            registry
                .register(m)
                .unwrap_or_else(|e| unreachable!("fresh registry: {e}"));
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            events,
            gateway_log_position,
            gateway_resumes,
            mail,
        }
    }

    /// The registry, for parts that export their own metrics (search).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

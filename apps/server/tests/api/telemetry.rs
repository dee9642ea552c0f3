//! Trace export: the `hearth` binary (a child process, because tracing is
//! process-global) sends its request spans over OTLP/HTTP to a collector
//! stand-in here, continues a W3C `traceparent`, and flushes on SIGTERM.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Every export the stand-in collector received, with its Content-Type.
type Received = Arc<Mutex<Vec<(String, ExportTraceServiceRequest)>>>;

async fn collect(
    State(got): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> ([(header::HeaderName, &'static str); 1], Vec<u8>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace export");
    got.lock().expect("lock").push((content_type, req));
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_an_otlp_collector() {
    // The stand-in collector.
    let got: Received = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(collect))
        .with_state(got.clone());
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the collector");
    let endpoint = format!(
        "http://{}",
        collector.local_addr().expect("collector address")
    );
    tokio::spawn(async move { axum::serve(collector, app).await });

    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = crate::cli::hearth()
        .env("HEARTH_OTLP_ENDPOINT", &endpoint)
        .args(["serve", "--listen", &listen, "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth");

    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    crate::cli::wait_healthy(&http, &base, "otel-health").await;
    // A call that continues the caller's trace, and one that starts its own.
    let res = http
        .get(format!("{base}/api/v1/users/@me"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .header("x-request-id", "otel-continued")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 401);
    let res = http
        .get(format!("{base}/api/v1/users/@me"))
        .header("x-request-id", "otel-fresh")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 401);

    // SIGTERM: the server drains, then flushes the spans still batched.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(exit.success(), "graceful exit on SIGTERM: {exit}\n{stderr}");

    // Everything was exported before the process exited: no waiting here.
    let got = got.lock().expect("lock");
    assert!(!got.is_empty(), "no trace export arrived\n{stderr}");
    let mut spans: Vec<&Span> = Vec::new();
    for (content_type, req) in got.iter() {
        assert_eq!(content_type, "application/x-protobuf", "OTLP/HTTP protobuf");
        for rs in &req.resource_spans {
            let res = rs.resource.as_ref().expect("a resource");
            assert_eq!(
                str_attr(&res.attributes, "service.name"),
                Some("hearth"),
                "service.name"
            );
            let instance = str_attr(&res.attributes, "service.instance.id").unwrap_or_default();
            assert!(!instance.is_empty(), "service.instance.id is set");
            spans.extend(rs.scope_spans.iter().flat_map(|ss| &ss.spans));
        }
    }
    let by_request_id = |id: &str| {
        spans
            .iter()
            .copied()
            .find(|s| str_attr(&s.attributes, "request_id") == Some(id))
            .unwrap_or_else(|| {
                let ids: Vec<_> = spans
                    .iter()
                    .map(|s| str_attr(&s.attributes, "request_id"))
                    .collect();
                panic!("no span for request {id}; got {ids:?}")
            })
    };

    let continued = by_request_id("otel-continued");
    assert_eq!(continued.name, "request");
    assert_eq!(
        hex(&continued.trace_id),
        TRACE_ID,
        "the traceparent's trace continues"
    );
    assert_eq!(
        hex(&continued.parent_span_id),
        PARENT_ID,
        "the caller's span is the parent"
    );
    assert_eq!(
        str_attr(&continued.attributes, "route"),
        Some("/api/v1/users/@me")
    );
    assert_eq!(str_attr(&continued.attributes, "method"), Some("GET"));
    assert!(
        matches!(
            attr(&continued.attributes, "status"),
            Some(any_value::Value::IntValue(401))
        ),
        "{:?}",
        continued.attributes
    );

    let fresh = by_request_id("otel-fresh");
    assert_ne!(
        hex(&fresh.trace_id),
        TRACE_ID,
        "no traceparent: a new trace"
    );
    assert!(fresh.parent_span_id.is_empty(), "a root span");

    let health = by_request_id("otel-health");
    assert_eq!(str_attr(&health.attributes, "route"), Some("/healthz"));
}

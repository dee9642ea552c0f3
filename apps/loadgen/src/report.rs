//! Results as a table for people and JSON for tools.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::Args;

pub struct Outcome {
    /// The scenario, plus a qualifier when one run gives several rows
    /// (e.g. `gw-rising 40/s`, `gw-fanout B`).
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latency_us: Histogram<u64>,
    pub server_rss_kib: Option<u64>,
    pub notes: String,
    /// Scenario-specific figures for the JSON (Null: none).
    pub extra: Value,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

pub fn print(args: &Args, results: &[Outcome]) {
    println!();
    if args.scenario == crate::Scenario::GwFloor {
        println!(
            "server: none (a bare writer process, started by the load generator)   pinned: {}",
            if args.pin {
                "yes (writer on CPU 0, load generator on CPU 1)"
            } else {
                "no"
            }
        );
    } else if args.scenario == crate::Scenario::VoiceJanus {
        println!(
            "server: Janus VideoRoom (started by the load generator)   duration: {} s   pinned: {}",
            args.duration,
            if args.pin {
                "yes (Janus on CPU 0, load generator on CPU 1)"
            } else {
                "no"
            }
        );
    } else if let Some(url) = &args.external {
        println!(
            "server: {url} (run elsewhere)   duration: {} s",
            args.duration
        );
    } else {
        println!(
            "backend: {:?}   nodes: {} (search index on {})   duration: {} s per scenario   pinned: {}",
            args.backend,
            args.nodes,
            args.search_nodes.unwrap_or(args.nodes).min(args.nodes),
            args.duration,
            if !args.pin {
                "no"
            } else if args.nodes > 1 {
                "yes (every server node on CPU 0, load generator on CPU 1)"
            } else {
                "yes (server on CPU 0, load generator on CPU 1)"
            }
        );
    }
    println!(
        "{:<16} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10}",
        "scenario", "count", "per s", "p50 ms", "p99 ms", "p99.9", "max ms", "errors", "RSS MiB"
    );
    for r in results {
        println!(
            "{:<16} {:>10} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>8} {:>10}",
            r.name,
            r.requests,
            r.rate(),
            r.ms(0.5),
            r.ms(0.99),
            r.ms(0.999),
            r.latency_us.max() as f64 / 1000.0,
            r.errors,
            r.server_rss_kib
                .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        );
        if !r.notes.is_empty() {
            println!("                 {}", r.notes);
        }
    }
}

pub fn json(args: &Args, results: &[Outcome]) -> String {
    let v: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut v = json!({
                "scenario": r.name,
                "backend": format!("{:?}", args.backend).to_lowercase(),
                "nodes": args.nodes,
                "search_nodes": args.search_nodes.unwrap_or(args.nodes),
                "pinned": args.pin,
                "requests": r.requests,
                "errors": r.errors,
                "seconds": r.seconds,
                "per_second": r.rate(),
                "latency_ms": { "p50": r.ms(0.5), "p99": r.ms(0.99), "p999": r.ms(0.999), "max": r.latency_us.max() as f64 / 1000.0 },
                "server_rss_kib": r.server_rss_kib,
                "notes": r.notes,
            });
            if !r.extra.is_null() {
                v["extra"] = r.extra.clone();
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

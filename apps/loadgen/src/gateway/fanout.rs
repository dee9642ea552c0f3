//! One channel, many connections: idle memory, fan-out at a fixed rate,
//! and fan-out at a rising rate to find where latency breaks.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

use super::client::{OnFrame, Opened, Target, open_many};
use super::probe::{Probe, WARMUP};
use super::{Poster, cohort, node_name};
use crate::Args;
use crate::report::Outcome;
use crate::server::Server;

/// Idle identified connections: memory per connection and connect time.
/// Connections are spread round-robin over `--users` accounts (default: one
/// account per connection), the accounts over `--communities` communities,
/// as real users are (a connection's cost depends on its account's view).
pub async fn idle(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &server.base, "idle_owner").await?;
    let users = args
        .users
        .unwrap_or(args.connections)
        .clamp(1, args.connections.max(1));
    let groups = args.communities.clamp(1, users);
    let made =
        cohort::communities(&http, &server.base, "idle", &owner, groups, users / groups).await?;
    let tokens: Vec<String> = made
        .iter()
        .flat_map(|c| c.members.iter().map(|a| a.token.clone()))
        .collect();
    if tokens.is_empty() {
        return Err("no accounts".into());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.rss_kib().unwrap_or(0);
    let targets = spread(server, args.connections, |i| {
        tokens[i % tokens.len()].clone()
    });
    let opened = open_many(targets, Arc::new(|_: usize, _: &str| {})).await?;
    let took = opened.took;
    // Twice: just after signing in (what identify leaves behind), and once
    // every connection has heartbeated (every 20 s) with the sequence it
    // has seen, which lets the server forget what was acknowledged: the
    // cost of a connection that stays idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fresh = server.rss_kib().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(22)).await;
    let after = server.rss_kib().unwrap_or(0);
    let per = |rss: u64| (rss.saturating_sub(before)) as f64 * 1024.0 / args.connections as f64;
    let (per_conn, per_conn_fresh) = (per(after), per(fresh));
    let mut h = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let _ = h.record(took.as_micros() as u64);
    opened.drop_all();
    Ok(vec![Outcome {
        name: "gw-idle".into(),
        requests: args.connections as u64,
        errors: 0,
        seconds: took.as_secs_f64(),
        latency_us: h,
        server_rss_kib: Some(after),
        notes: format!(
            "{} identified idle connections of {} accounts in {} communities opened in {:.1} s; server RSS {:.1} → {:.1} MiB = {:.1} KB per connection after a heartbeat ({:.1} KB just after signing in)",
            args.connections,
            tokens.len(),
            made.len(),
            took.as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            per_conn / 1000.0,
            per_conn_fresh / 1000.0
        ),
        extra: json!({"accounts": tokens.len(), "communities": made.len(), "connect_secs": took.as_secs_f64(), "bytes_per_connection": per_conn, "bytes_per_connection_signed_in": per_conn_fresh}),
    }])
}

/// This process's CPU time, in seconds.
fn own_cpu_seconds() -> Option<f64> {
    crate::voice_common::cpu_seconds(std::process::id())
}

/// `n` connections, connection `i` on node `i % nodes`, as `token_of(i)`.
pub(super) fn spread(server: &Server, n: usize, token_of: impl Fn(usize) -> String) -> Vec<Target> {
    (0..n)
        .map(|i| Target {
            addr: server.nodes[i % server.nodes.len()].addr(),
            token: token_of(i),
        })
        .collect()
}

/// Opens `targets`, recording each MESSAGE_CREATE into `bucket_of(connection, stamp bucket)`.
pub(super) async fn open_recording(
    targets: Vec<Target>,
    probe: &Arc<Probe>,
    bucket_of: impl Fn(usize, usize) -> usize + Send + Sync + 'static,
) -> Result<Opened, String> {
    let probe = probe.clone();
    let on_frame: OnFrame = Arc::new(move |i: usize, t: &str| {
        if let Some(st) = Probe::parse(t) {
            probe.record(bucket_of(i, st.bucket), st.sent_us);
        }
    });
    open_many(targets, on_frame).await
}

/// Sends to one channel at `rate` msg/s for `secs`, stamped with `bucket`;
/// returns (messages sent, when sending started in probe µs).
pub(super) async fn send_at(
    poster: &Poster,
    probe: &Probe,
    (base, channel, token): (&str, &str, &str),
    rate: u64,
    secs: f64,
    bucket: usize,
) -> (u64, u64) {
    let start_us = probe.now_us();
    let start = tokio::time::Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    let mut sent = 0u64;
    loop {
        tick.tick().await;
        if tokio::time::Instant::now() >= end {
            break;
        }
        poster.post(base, channel, token, probe.content(bucket, 0));
        sent += 1;
    }
    (sent, start_us)
}

/// Accounts for `connections` gateway connections: `--users`, else `default`,
/// but never more connections on one account than the server's limit of
/// sessions per user allows (real clients are not one account on 2,000 sockets).
pub(super) fn accounts(args: &Args, default: usize) -> usize {
    const MAX_SESSIONS_PER_USER: usize = 16;
    let n = args.connections.max(1);
    args.users
        .unwrap_or(default)
        .max(n.div_ceil(MAX_SESSIONS_PER_USER))
        .clamp(1, n)
}

pub async fn fanout(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &server.base, "fanout_owner").await?;
    // The receivers are members on accounts of their own, ten connections each
    // (a person's devices and tabs), in the channel the owner posts to.
    let users = accounts(args, args.connections.div_ceil(10));
    let mut made = cohort::communities(&http, &server.base, "fanout", &owner, 1, users).await?;
    let community = made.pop().ok_or("no community")?;
    let tokens: Vec<String> = community.members.iter().map(|a| a.token.clone()).collect();
    let (token, channel) = (owner.token.clone(), community.channel.clone());
    let nodes = server.nodes.len();
    // Bucket 1 + n: measured deliveries on node n.
    let probe = Arc::new(Probe::new(1 + nodes));
    let targets = spread(server, args.connections, |i| {
        tokens[i % tokens.len()].clone()
    });
    let opened = open_recording(targets, &probe, move |i, b| {
        if b == WARMUP { WARMUP } else { 1 + i % nodes }
    })
    .await?;
    let poster = Poster::new();
    let to = (server.base.as_str(), channel.as_str(), token.as_str());
    send_at(&poster, &probe, to, args.rate, args.warmup as f64, WARMUP).await;
    let (sent, start_us) = send_at(&poster, &probe, to, args.rate, args.duration as f64, 1).await;
    probe.settle(Duration::from_secs(10)).await;
    let closed = opened.closed();
    opened.drop_all();
    let mut rows = Vec::new();
    for n in 0..nodes {
        let here = (0..args.connections).filter(|i| i % nodes == n).count() as u64;
        let delivered = probe.delivered(1 + n);
        let (name, whose) = if nodes == 1 {
            ("gw-fanout".to_string(), String::new())
        } else {
            (
                format!("gw-fanout {}", node_name(n)),
                format!(
                    "; the {here} receivers on node {}{}",
                    node_name(n),
                    if n == 0 {
                        " (the node the sender posts to)"
                    } else {
                        " (the other node: events cross NATS)"
                    }
                ),
            )
        };
        rows.push(Outcome {
            name,
            requests: delivered,
            errors: (sent * here).saturating_sub(delivered),
            seconds: probe.seconds_since(1 + n, start_us, args.duration as f64),
            latency_us: probe.histogram(1 + n),
            server_rss_kib: server.nodes[n].rss_kib(),
            notes: format!(
                "{} connections ({users} accounts) in one channel over {nodes} node(s), {} msg/s sent over REST to node A{whose}; deliveries/s and send-to-receive latency; errors = expected deliveries missing ({} posts failed, {closed} connections closed by the server)",
                args.connections,
                args.rate,
                poster.failed()
            ),
            extra: json!({ "sent": sent, "receivers": here, "accounts": users, "posts_failed": poster.failed(), "closed_by_server": closed }),
        });
    }
    Ok(rows)
}

/// One channel with `--connections` members' connections and a send rate
/// rising through `--steps`, one row per step. Each step's backlog drains
/// before the next starts, and a step's messages count for it whenever they
/// arrive, so a step the server cannot keep up with shows as latency.
pub async fn rising(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &server.base, "rising_owner").await?;
    // Connections share `--users` accounts: each account announces its
    // presence to the whole community once, and READY lists every online
    // member, so 10,000 distinct accounts in one community would measure
    // the presence storm instead of message fan-out.
    let users = accounts(args, 100);
    let mut made = cohort::communities(&http, &server.base, "rising", &owner, 1, users).await?;
    let community = made.pop().ok_or("no community")?;
    let tokens: Vec<String> = community.members.iter().map(|a| a.token.clone()).collect();
    let steps = &args.steps;
    let probe = Arc::new(Probe::new(1 + steps.len()));
    let targets = spread(server, args.connections, |i| {
        tokens[i % tokens.len()].clone()
    });
    let opened = open_recording(targets, &probe, |_, b| b).await?;
    eprintln!(
        "gw-rising: {} connections READY in {:.1} s",
        args.connections,
        opened.took.as_secs_f64()
    );
    let poster = Poster::new();
    let to = (
        server.base.as_str(),
        community.channel.as_str(),
        owner.token.as_str(),
    );
    let first = steps.first().copied().unwrap_or(10);
    send_at(&poster, &probe, to, first, args.warmup as f64, WARMUP).await;
    probe.settle(Duration::from_secs(10)).await;
    let mut rows = Vec::new();
    let n = args.connections as u64;
    for (k, &rate) in steps.iter().enumerate() {
        let failed_before = poster.failed();
        let cpu_before = (server.cpu_seconds(), own_cpu_seconds());
        let (sent, start_us) =
            send_at(&poster, &probe, to, rate, args.step_secs as f64, k + 1).await;
        probe.settle(Duration::from_secs(15)).await;
        let delivered = probe.delivered(k + 1);
        let closed = opened.closed();
        let seconds = probe.seconds_since(k + 1, start_us, args.step_secs as f64);
        // CPU over the step (the quiet end of the settle adds next to
        // nothing), as cores busy while delivering: what one core pinned
        // and both cores free are compared by.
        let cores = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(b), Some(a)) if seconds > 0.0 => (a - b) / seconds,
            _ => f64::NAN,
        };
        let server_cores = cores(cpu_before.0, server.cpu_seconds());
        let loadgen_cores = cores(cpu_before.1, own_cpu_seconds());
        rows.push(Outcome {
            name: format!("gw-rising {rate}/s"),
            requests: delivered,
            errors: (sent * n).saturating_sub(delivered),
            seconds,
            latency_us: probe.histogram(k + 1),
            server_rss_kib: server.rss_kib(),
            notes: format!(
                "step {}: {rate} msg/s for {} s to {n} connections ({users} accounts) in one channel = {} deliveries/s offered; {} posts failed, {closed} connections closed by the server so far; server busy {server_cores:.2} cores, load generator {loadgen_cores:.2}",
                k + 1,
                args.step_secs,
                rate * n,
                poster.failed() - failed_before
            ),
            extra: json!({ "step": k + 1, "rate": rate, "sent": sent, "offered_per_second": rate * n, "closed_by_server": closed, "server_cores": server_cores, "loadgen_cores": loadgen_cores }),
        });
        if closed * 2 > n {
            eprintln!("gw-rising: over half the connections are gone; stopping");
            break;
        }
    }
    opened.drop_all();
    Ok(rows)
}

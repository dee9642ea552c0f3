//! Gateway scenarios: real WebSocket clients speaking the contract's
//! protocol, spread over 127.0.0.x source addresses (one address has only
//! ~28k ephemeral ports, and spreading mimics many hosts).
//!
//! - `idle`: N identified connections that only heartbeat; reports the
//!   server's RSS per connection.
//! - `fanout`: N connections in one community channel while a sender posts
//!   at a fixed rate over REST; reports deliveries/s and send-to-receive
//!   latency (each message carries its send time).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use crate::Args;
use crate::report::Outcome;
use crate::server::Server;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens one gateway connection from 127.0.0.<1 + i % 250>, identifies, waits for READY.
async fn connect(addr: SocketAddr, i: usize, token: &str) -> Result<Ws, String> {
    let local = Ipv4Addr::new(127, 0, 0, 1 + (i % 250) as u8);
    let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    sock.bind(SocketAddr::from((local, 0)))
        .map_err(|e| format!("bind {local}: {e}"))?;
    let stream = sock.connect(addr).await.map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}/api/v1/gateway");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| e.to_string())?;
    ws.next()
        .await
        .ok_or("closed before hello")?
        .map_err(|e| e.to_string())?;
    ws.send(Message::Text(
        json!({"op": "identify", "d": {"token": token}})
            .to_string()
            .into(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"READY\"") => return Ok(ws),
            Some(Ok(_)) => continue,
            other => return Err(format!("no READY: {other:?}")),
        }
    }
}

fn server_addr(server: &Server) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
}

async fn owner_and_channel(server: &Server) -> Result<(String, String), String> {
    let (owner, channel, _) =
        crate::scenarios::setup(&reqwest::Client::new(), &server.base, "gateway", 0).await?;
    Ok((owner.token, channel))
}

/// Opens `n` connections, `parallel` at a time; each then heartbeats and
/// hands every text frame to `on_frame`.
async fn open_many(
    server: &Server,
    n: usize,
    token: &str,
    on_frame: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, Duration), String> {
    let addr = server_addr(server);
    let start = Instant::now();
    let opened = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let failures = Arc::new(AtomicU64::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(200));
    let mut setup = Vec::new();
    for i in 0..n {
        let (token, opened, failures, sem, on_frame) = (
            token.to_string(),
            opened.clone(),
            failures.clone(),
            sem.clone(),
            on_frame.clone(),
        );
        setup.push(tokio::spawn(async move {
            let Ok(_permit) = sem.acquire().await else { return };
            match connect(addr, i, &token).await {
                Ok(ws) => {
                    let task = tokio::spawn(async move {
                        let (mut tx, mut rx) = ws.split();
                        let mut beat = tokio::time::interval(Duration::from_secs(20));
                        beat.tick().await;
                        loop {
                            tokio::select! {
                                _ = beat.tick() => {
                                    if tx.send(Message::Text(r#"{"op":"heartbeat","d":{}}"#.into())).await.is_err() { return; }
                                }
                                m = rx.next() => match m {
                                    Some(Ok(Message::Text(t))) => on_frame(t.as_str()),
                                    Some(Ok(_)) => {}
                                    _ => return,
                                },
                            }
                        }
                    });
                    opened.lock().await.push(task);
                }
                Err(e) => {
                    if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("connection {i}: {e}");
                    }
                }
            }
        }));
    }
    for s in setup {
        let _ = s.await;
    }
    let took = start.elapsed();
    let f = failures.load(Ordering::Relaxed);
    if f > 0 {
        return Err(format!("{f} of {n} connections failed"));
    }
    let tasks = std::mem::take(&mut *opened.lock().await);
    Ok((tasks, took))
}

pub async fn idle(args: &Args, server: &Server) -> Result<Outcome, String> {
    let (token, _) = owner_and_channel(server).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib().unwrap_or(0);
    let (tasks, took) = open_many(server, args.connections, &token, Arc::new(|_: &str| {})).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.rss_kib().unwrap_or(0);
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / args.connections as f64;
    let mut h = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let _ = h.record(took.as_micros() as u64);
    for t in tasks {
        t.abort();
    }
    Ok(Outcome {
        name: "gw-idle",
        requests: args.connections as u64,
        errors: 0,
        seconds: took.as_secs_f64(),
        latency_us: h,
        server_rss_kib: Some(after),
        notes: format!(
            "{} identified idle connections opened in {:.1} s; server RSS {:.1} → {:.1} MiB = {:.1} KB per connection",
            args.connections,
            took.as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            per_conn / 1000.0
        ),
    })
}

pub async fn fanout(args: &Args, server: &Server) -> Result<Outcome, String> {
    let (token, channel) = owner_and_channel(server).await?;
    let hist = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
    ));
    let delivered = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let epoch = Instant::now();
    let on_frame = {
        let (hist, delivered, measuring) = (hist.clone(), delivered.clone(), measuring.clone());
        Arc::new(move |t: &str| {
            if !t.contains("\"MESSAGE_CREATE\"") {
                return;
            }
            // Content is "t=<micros since loadgen start>".
            if let Some(sent) = t
                .split("t=")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|v| v.parse::<u64>().ok())
                && measuring.load(Ordering::Relaxed)
            {
                let now = epoch.elapsed().as_micros() as u64;
                delivered.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut h) = hist.lock() {
                    let _ = h.record(now.saturating_sub(sent).max(1));
                }
            }
        }) as Arc<dyn Fn(&str) + Send + Sync>
    };
    let (tasks, _) = open_many(server, args.connections, &token, on_frame).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/channels/{channel}/messages", server.base);
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let mut tick = tokio::time::interval(interval);
    let mut sent = 0u64;
    let warm_until = Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_until + args.duration();
    let mut started = None;
    while Instant::now() < end {
        tick.tick().await;
        if started.is_none() && Instant::now() >= warm_until {
            measuring.store(true, Ordering::Relaxed);
            started = Some(Instant::now());
        }
        let body = json!({"content": format!("t={}", epoch.elapsed().as_micros())});
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            let _ = http.post(url).bearer_auth(token).json(&body).send().await;
        });
        if started.is_some() {
            sent += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(false, Ordering::Relaxed);
    let secs = started.map_or(1.0, |s| s.elapsed().as_secs_f64() - 1.0);
    for t in tasks {
        t.abort();
    }
    let h = hist.lock().map_err(|_| "histogram lock")?.clone();
    let n = delivered.load(Ordering::Relaxed);
    let expected = sent * args.connections as u64;
    Ok(Outcome {
        name: "gw-fanout",
        requests: n,
        errors: expected.saturating_sub(n),
        seconds: secs,
        latency_us: h,
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "{} connections in one channel, {} msg/s sent over REST; deliveries/s and send-to-receive latency; errors = expected deliveries missing",
            args.connections, args.rate
        ),
    })
}

//! Reconnect storm: N identified connections all drop at once (a network
//! blip, a load balancer restart) and every client comes back within
//! `--storm-window` seconds the way clients do: resume with its session id
//! and last sequence, identify again only on `invalid_session`, retry after
//! a second on failure.
//!
//! A slow trickle of messages runs throughout, so the resume guarantee is
//! checked too: every resumed connection must end with every message the
//! server answered 201 for, once, in sequence order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use super::client::{Resumed, Ws, connect, dial, identify, resume, seq_of};
use super::probe::{Probe, histogram};
use super::{Poster, cohort};
use crate::Args;
use crate::report::Outcome;
use crate::server::Server;

/// What one client remembers across reconnects.
struct Slot {
    token: String,
    session: std::sync::Mutex<String>,
    last_s: AtomicU64,
    /// Stamped MESSAGE_CREATE dispatches seen.
    msgs: AtomicU64,
    /// Dispatches whose sequence was not above the last one seen.
    out_of_order: AtomicU64,
    /// Had to identify again, so missed messages are not expected here.
    reidentified: AtomicBool,
}

impl Slot {
    fn see(&self, frame: &str) {
        if let Some(s) = seq_of(frame) {
            if s <= self.last_s.load(Ordering::Relaxed) {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            } else {
                self.last_s.store(s, Ordering::Relaxed);
            }
        }
        if Probe::parse(frame).is_some() {
            self.msgs.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads until the server closes or the task is aborted, heartbeating with
/// the last sequence seen like a real client.
async fn live(ws: Ws, slot: Arc<Slot>) {
    let beat = || {
        let s = slot.last_s.load(Ordering::Relaxed);
        json!({"op": "heartbeat", "d": {"s": s}}).to_string()
    };
    super::client::read_loop(ws, beat, |t| slot.see(t)).await;
}

enum Back {
    Resumed,
    Identified,
}

/// One reconnect: dial, resume (or identify on invalid_session).
async fn come_back(
    addr: std::net::SocketAddr,
    i: usize,
    slot: &Arc<Slot>,
) -> Result<(Ws, Back), String> {
    let mut ws = dial(addr, i).await?;
    let session = slot.session.lock().map(|s| s.clone()).unwrap_or_default();
    let s = slot.last_s.load(Ordering::Relaxed);
    let mut see = |f: &str| slot.see(f);
    match resume(&mut ws, &slot.token, &session, s, &mut see).await? {
        Resumed::Resumed => Ok((ws, Back::Resumed)),
        Resumed::Invalid => {
            let id = identify(&mut ws, &slot.token).await?;
            if let Ok(mut g) = slot.session.lock() {
                *g = id;
            }
            slot.last_s.store(1, Ordering::Relaxed);
            slot.reidentified.store(true, Ordering::Relaxed);
            Ok((ws, Back::Identified))
        }
    }
}

fn mib(k: Option<u64>) -> f64 {
    k.unwrap_or(0) as f64 / 1024.0
}

pub async fn storm(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let node = &server.nodes[0];
    let addr = node.addr();
    let n = args.connections;
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &server.base, "storm_owner").await?;
    // 100 accounts by default, raised so none holds more than 16 sessions
    // (the per-user limit): 625 for 10,000 connections.
    let users = super::fanout::accounts(args, 100);
    let mut made = cohort::communities(&http, &server.base, "storm", &owner, 1, users).await?;
    let community = made.pop().ok_or("no community")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_baseline = node.rss_kib();

    // 1. Everyone identifies (200 at a time, as in gw-idle).
    let slots: Vec<Arc<Slot>> = (0..n)
        .map(|i| {
            Arc::new(Slot {
                token: community.members[i % users].token.clone(),
                session: std::sync::Mutex::new(String::new()),
                last_s: AtomicU64::new(0),
                msgs: AtomicU64::new(0),
                out_of_order: AtomicU64::new(0),
                reidentified: AtomicBool::new(false),
            })
        })
        .collect();
    let connect_start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(200));
    let mut setup = Vec::with_capacity(n);
    for (i, slot) in slots.iter().enumerate() {
        let (slot, sem) = (slot.clone(), sem.clone());
        setup.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.map_err(|e| e.to_string())?;
            let (ws, id) = connect(addr, i, &slot.token).await?;
            if let Ok(mut g) = slot.session.lock() {
                *g = id;
            }
            slot.last_s.store(1, Ordering::Relaxed); // READY is always s = 1
            Ok::<_, String>(tokio::spawn(live(ws, slot)))
        }));
    }
    let mut tasks = Vec::with_capacity(n);
    for s in setup {
        tasks.push(s.await.map_err(|e| e.to_string())??);
    }
    let identify_secs = connect_start.elapsed().as_secs_f64();
    eprintln!("gw-storm: {n} connections READY in {identify_secs:.1} s");

    // 2. A trickle of messages from now until the end of the storm.
    let poster = Poster::new();
    let probe = Probe::new(2);
    let sending = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (poster, sending, sent) = (poster.clone(), sending.clone(), sent.clone());
        let (base, channel, token) = (
            server.base.clone(),
            community.channel.clone(),
            owner.token.clone(),
        );
        let rate = args.storm_rate.max(1);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            while sending.load(Ordering::Relaxed) {
                tick.tick().await;
                poster.post(&base, &channel, &token, probe.content(1, 0));
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_connected = node.rss_kib();

    // 3. Everyone drops at once; each comes back at a random moment of the window.
    for t in tasks.drain(..) {
        t.abort();
    }
    let t0 = Instant::now();
    let window = args.storm_window;
    let done = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let mut back = Vec::with_capacity(n);
    for (i, slot) in slots.iter().enumerate() {
        let (slot, done) = (slot.clone(), done.clone());
        let delay = if window > 0.0 {
            Duration::from_secs_f64(rand::rng().random_range(0.0..window))
        } else {
            Duration::ZERO
        };
        back.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let start = Instant::now();
            let mut result = Err(String::new());
            for attempt in 0..5 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                result = tokio::time::timeout(Duration::from_secs(30), come_back(addr, i, &slot))
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()));
                if result.is_ok() {
                    break;
                }
            }
            let took = start.elapsed();
            let finished = t0.elapsed();
            match result {
                Ok((ws, how)) => {
                    if let Ok(mut d) = done.lock() {
                        d.push((took, finished, matches!(how, Back::Resumed), None));
                    }
                    live(ws, slot).await;
                }
                Err(e) => {
                    if let Ok(mut d) = done.lock() {
                        d.push((took, finished, false, Some(e)));
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(window as u64 + 120);
    while done.lock().map(|d| d.len()).unwrap_or(n) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    sending.store(false, Ordering::Relaxed);
    let _ = sender.await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = node.rss_kib();

    // 4. Tally: latency, outcomes, and whether any message was lost or doubled.
    let results = done.lock().map(|d| d.clone()).unwrap_or_default();
    let mut h = histogram();
    let (mut resumed, mut identified, mut failed, mut last_done) = (0u64, 0u64, 0u64, 0.0f64);
    for (took, finished, was_resume, err) in &results {
        match err {
            None => {
                let _ = h.record(took.as_micros().max(1) as u64);
                last_done = last_done.max(finished.as_secs_f64());
                if *was_resume {
                    resumed += 1;
                } else {
                    identified += 1;
                }
            }
            Some(e) => {
                if failed < 3 {
                    eprintln!("gw-storm reconnect: {e}");
                }
                failed += 1;
            }
        }
    }
    let missing = n as u64 - results.len() as u64;
    let expected = sent.load(Ordering::Relaxed) - poster.failed();
    let (mut lost, mut doubled, mut out_of_order) = (0u64, 0u64, 0u64);
    for s in slots
        .iter()
        .filter(|s| !s.reidentified.load(Ordering::Relaxed))
    {
        let got = s.msgs.load(Ordering::Relaxed);
        lost += expected.saturating_sub(got);
        doubled += got.saturating_sub(expected);
        out_of_order += s.out_of_order.load(Ordering::Relaxed);
    }

    // 5. Everyone leaves; does the server give the memory back?
    for t in back {
        t.abort();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_closed = node.rss_kib();
    let resume_window = args.resume_secs.unwrap_or(120);
    let rss_reaped = if resume_window <= 30 {
        // Detached sessions stay resumable for the window; the reaper runs
        // every 5 s after it.
        tokio::time::sleep(Duration::from_secs(resume_window.saturating_sub(10) + 7)).await;
        node.rss_kib()
    } else {
        None
    };
    let reaped = rss_reaped.map_or(
        format!("(resume window {resume_window} s: not waited for)"),
        |k| {
            format!(
                "{:.1} MiB once the {resume_window} s resume window expired",
                k as f64 / 1024.0
            )
        },
    );
    Ok(vec![Outcome {
        name: "gw-storm".into(),
        requests: resumed + identified,
        errors: failed + missing,
        seconds: last_done.max(0.001),
        latency_us: h,
        server_rss_kib: rss_after,
        notes: format!(
            "{n} connections ({users} accounts) identified in {identify_secs:.1} s, dropped at once, reconnected at random over {window} s: {resumed} RESUMED, {identified} invalid_session → READY, {failed} failed, {missing} unfinished; all back {last_done:.2} s after the drop; latency = dial to RESUMED/READY; {} msg/s throughout: {lost} lost, {doubled} doubled, {out_of_order} out of sequence; server RSS {:.1} MiB before connecting, {:.1} connected, {:.1} after the storm, {:.1} 10 s after all closed, {reaped}",
            args.storm_rate,
            mib(rss_baseline),
            mib(rss_connected),
            mib(rss_after),
            mib(rss_closed),
        ),
        extra: json!({
            "connections": n,
            "accounts": users,
            "identify_seconds": identify_secs,
            "window_seconds": window,
            "resumed": resumed,
            "invalid_session_then_ready": identified,
            "failed": failed,
            "unfinished": missing,
            "all_back_seconds": last_done,
            "messages_expected_per_connection": expected,
            "messages_lost": lost,
            "messages_doubled": doubled,
            "out_of_sequence": out_of_order,
            "rss_kib": {
                "baseline": rss_baseline,
                "connected": rss_connected,
                "after_storm": rss_after,
                "closed_10s": rss_closed,
                "after_resume_window": rss_reaped,
            },
        }),
    }])
}

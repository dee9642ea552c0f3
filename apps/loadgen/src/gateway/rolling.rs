//! Rolling restart: clients connected through a load balancer in front of a
//! cluster (`--external`, e.g. the nginx of `scripts/cluster.sh`) while
//! messages are sent through it at `--rate` for `--duration` seconds and
//! the operator restarts every node in turn (`scripts/rolling-restart.sh`).
//!
//! Each client behaves as the web app does: on any close (a draining node
//! sends op `reconnect` and closes with 1012) it dials the balancer again
//! and resumes with its session id and last sequence, identifying again
//! only on `invalid_session`. The sender posts each message once with a
//! nonce and, when an answer is not 201 (a node stopping under it), retries
//! with the same nonce after a pause that doubles (as the web app's outbox
//! does, from 100 ms rather than its 2 s): the server answers a repeated
//! nonce with the first message, never a second one.
//!
//! After sending, it waits until every client has every acknowledged
//! message (or 30 s pass) and reports, per client summed: messages lost,
//! seen twice and out of ID order, clients that had to identify again,
//! the time from a close to RESUMED, and the sends' latency (first attempt
//! to 201). Any loss, repeat, disorder or re-identify fails the run.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use super::client::{Resumed, dial, field, identify, read_loop, resume, seq_of};
use super::cohort;
use super::probe::histogram;
use crate::Args;
use crate::report::Outcome;
use crate::server::Server;

/// What one client keeps across reconnects.
struct Client {
    token: String,
    /// Which of the run's communities it is in (it sees that one's channel).
    community: usize,
    session: Mutex<String>,
    last_s: AtomicU64,
    /// MESSAGE_CREATE ids in arrival order.
    ids: Mutex<Vec<u64>>,
    out_of_seq: AtomicU64,
    reidentified: AtomicBool,
    reconnects: AtomicU64,
    /// Close → RESUMED, in µs.
    back_us: Mutex<Histogram<u64>>,
    /// When its connections closed and came back (s since [`epoch`]), to
    /// place any loss in time when the run fails.
    history: Mutex<Vec<(f64, &'static str)>>,
}

/// The run's clock for [`Client::history`] and the acknowledgements.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn since_epoch() -> f64 {
    epoch().elapsed().as_secs_f64()
}

impl Client {
    fn see(&self, frame: &str) {
        if let Some(s) = seq_of(frame) {
            if s <= self.last_s.load(Ordering::Relaxed) {
                self.out_of_seq.fetch_add(1, Ordering::Relaxed);
            } else {
                self.last_s.store(s, Ordering::Relaxed);
            }
        }
        // Parsed in full: the message's own id is not the frame's first
        // "id" (its author's comes before it).
        if frame.contains("\"t\":\"MESSAGE_CREATE\"")
            && field(frame, "content").is_some_and(|c| c.starts_with("rolling "))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(frame)
            && let Some(id) = v["d"]["id"].as_str().and_then(|i| i.parse().ok())
            && let Ok(mut ids) = self.ids.lock()
        {
            ids.push(id);
        }
    }

    fn note(&self, what: &'static str) {
        if let Ok(mut h) = self.history.lock() {
            h.push((since_epoch(), what));
        }
    }

    fn seen(&self) -> usize {
        self.ids.lock().map_or(0, |i| i.len())
    }
}

/// Connects (identify the first time, resume after), reads until the
/// connection ends, and again, until `stop`.
async fn run_client(addr: SocketAddr, i: usize, c: Arc<Client>, stop: Arc<AtomicBool>) {
    let mut closed_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let ws = match connect(addr, i, &c).await {
            Ok(ws) => {
                c.note(if closed_at.is_some() {
                    "resumed"
                } else {
                    "ready"
                });
                ws
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(at) = closed_at.take() {
            c.reconnects.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut h) = c.back_us.lock() {
                let _ = h.record(at.elapsed().as_micros() as u64);
            }
        }
        let beat = || {
            let s = c.last_s.load(Ordering::Relaxed);
            json!({"op": "heartbeat", "d": {"s": s}}).to_string()
        };
        let reading = read_loop(ws, beat, |t| c.see(t));
        // Stop reading when told to, even on a quiet connection.
        let stopped = async {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            _ = reading => {
                c.note("closed");
                closed_at = Some(Instant::now());
            }
            _ = stopped => return,
        }
    }
}

async fn connect(addr: SocketAddr, i: usize, c: &Client) -> Result<super::client::Ws, String> {
    // Above the 8 s a node may wait for its routing before a remote resume.
    tokio::time::timeout(Duration::from_secs(15), async {
        let mut ws = dial(addr, i).await?;
        let session = c.session.lock().map(|s| s.clone()).unwrap_or_default();
        if !session.is_empty() {
            let s = c.last_s.load(Ordering::Relaxed);
            let mut see = |f: &str| c.see(f);
            match resume(&mut ws, &c.token, &session, s, &mut see).await? {
                Resumed::Resumed => return Ok(ws),
                Resumed::Invalid => c.reidentified.store(true, Ordering::Relaxed),
            }
        }
        let id = identify(&mut ws, &c.token).await?;
        if let Ok(mut g) = c.session.lock() {
            *g = id;
        }
        c.last_s.store(1, Ordering::Relaxed);
        Ok(ws)
    })
    .await
    .map_err(|_| "timed out".to_string())?
}

/// One client's losses as runs of consecutive acknowledged messages, with
/// when they were acknowledged and when its connections closed and resumed.
fn where_lost(i: usize, c: &Client, acked: &[(u64, u64, f64)], seen: &HashSet<u64>) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (n, a) in acked.iter().enumerate() {
        if seen.contains(&a.0) {
            continue;
        }
        match runs.last_mut() {
            Some(r) if r.1 + 1 == n => r.1 = n,
            _ => runs.push((n, n)),
        }
    }
    let shown: Vec<String> = runs
        .iter()
        .take(5)
        .map(|&(a, b)| {
            format!(
                "{} message(s) k {}..{} acked {:.2}-{:.2} s",
                b - a + 1,
                acked[a].1,
                acked[b].1,
                acked[a].2,
                acked[b].2
            )
        })
        .collect();
    let history: Vec<String> = c
        .history
        .lock()
        .map(|h| h.iter().map(|(t, w)| format!("{w} {t:.2}")).collect())
        .unwrap_or_default();
    format!(
        "client {i} missed {} run(s): {}; its connection: {}",
        runs.len(),
        shown.join(", "),
        history.join(", ")
    )
}

/// Posts message `k` until it is acknowledged (same nonce each time);
/// returns its id, the time from the first attempt, and the retries.
pub(super) async fn send_one(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    token: &str,
    label: &str,
    k: u64,
) -> Result<(u64, Duration, u64), String> {
    let start = Instant::now();
    let mut retries = 0;
    loop {
        let res = http
            .post(format!("{base}/api/v1/channels/{channel}/messages"))
            .bearer_auth(token)
            .json(&json!({"content": format!("{label} {k}"), "nonce": format!("{label}-{k}")}))
            // Above the longest a node holds a send on purpose (5 s for
            // the channel's lease, 12 s for its event to be stored).
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        if let Ok(r) = res
            && (r.status().as_u16() == 201 || r.status().as_u16() == 200)
            && let Ok(v) = r.json::<serde_json::Value>().await
            && let Some(id) = v["id"].as_str().and_then(|i| i.parse().ok())
        {
            return Ok((id, start.elapsed(), retries));
        }
        retries += 1;
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("message {k} not acknowledged within 60 s"));
        }
        // Backing off (100 ms doubling to 2 s), as a client should: a retry
        // every 100 ms multiplies the load of a cluster that is already slow.
        let pause = 100u64 << retries.min(5);
        tokio::time::sleep(Duration::from_millis(pause.min(2000))).await;
    }
}

pub async fn rolling(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    epoch();
    let base = server.base.clone();
    let addr: SocketAddr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("--external must be http://IP:PORT: {e}"))?;
    let n = args.connections;
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &base, "rolling_owner").await?;
    let users = args.users.unwrap_or(n).clamp(1, n.max(1));
    // Clients and messages spread over `--channels` communities (one
    // channel each): client i is in community i mod k, message j goes to
    // community j mod k.
    let k = args.channels.clamp(1, users);
    let per = users / k;
    let made = cohort::communities(&http, &base, "rolling", &owner, k, per).await?;
    let channels: Vec<String> = made.iter().map(|c| c.channel.clone()).collect();
    let clients: Vec<Arc<Client>> = (0..n)
        .map(|i| {
            Arc::new(Client {
                token: made[i % k].members[(i / k) % per].token.clone(),
                community: i % k,
                session: Mutex::new(String::new()),
                last_s: AtomicU64::new(0),
                ids: Mutex::new(Vec::new()),
                out_of_seq: AtomicU64::new(0),
                reidentified: AtomicBool::new(false),
                reconnects: AtomicU64::new(0),
                back_us: Mutex::new(histogram()),
                history: Mutex::new(Vec::new()),
            })
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(run_client(addr, i, c.clone(), stop.clone())))
        .collect();
    // Everyone identified before the first message.
    let start = Instant::now();
    while clients
        .iter()
        .any(|c| c.session.lock().map_or(true, |s| s.is_empty()))
    {
        if start.elapsed() > Duration::from_secs(60) {
            stop.store(true, Ordering::Relaxed);
            return Err("clients did not identify within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "rolling: {n} clients ({} accounts, {k} communities) identified through {base}; sending {} msg/s for {} s",
        per * k,
        args.rate,
        args.duration
    );
    // The sender: an open loop at --rate, each message retried until acked.
    let sends = Arc::new(Mutex::new(histogram()));
    let retries = Arc::new(AtomicU64::new(0));
    // (id, k, acknowledged at s since epoch), per community
    let acked = Arc::new(Mutex::new(vec![Vec::<(u64, u64, f64)>::new(); k]));
    let unacked = Arc::new(AtomicU64::new(0));
    let total = args.rate * args.duration;
    let gap = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let mut tick = tokio::time::interval(gap);
    let mut pending = Vec::new();
    let sending = Instant::now();
    for j in 0..total {
        tick.tick().await;
        let community = (j % k as u64) as usize;
        let (http, base, channel, token) = (
            http.clone(),
            base.clone(),
            channels[community].clone(),
            owner.token.clone(),
        );
        let (sends, retries, acked, unacked) = (
            sends.clone(),
            retries.clone(),
            acked.clone(),
            unacked.clone(),
        );
        pending.push(tokio::spawn(async move {
            match send_one(&http, &base, &channel, &token, "rolling", j).await {
                Ok((id, took, r)) => {
                    retries.fetch_add(r, Ordering::Relaxed);
                    if let Ok(mut h) = sends.lock() {
                        let _ = h.record(took.as_micros() as u64);
                    }
                    if let Ok(mut a) = acked.lock() {
                        a[community].push((id, j, since_epoch()));
                    }
                }
                Err(e) => {
                    eprintln!("rolling: {e}");
                    unacked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for p in pending {
        let _ = p.await;
    }
    let sent_for = sending.elapsed();
    let mut acked_at: Vec<Vec<(u64, u64, f64)>> =
        acked.lock().map(|a| a.clone()).unwrap_or_default();
    for a in &mut acked_at {
        a.sort_unstable_by_key(|a| a.0);
        a.dedup_by_key(|a| a.0);
    }
    let acked_count: usize = acked_at.iter().map(Vec::len).sum();
    // Wait for the backlog to drain rather than a fixed window.
    let drain = Instant::now();
    while clients
        .iter()
        .any(|c| c.seen() < acked_at[c.community].len())
        && drain.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    let (mut lost, mut twice, mut disorder, mut reidentified, mut reconnects) = (0, 0, 0, 0, 0);
    let mut back = histogram();
    let mut told = 0;
    for (i, c) in clients.iter().enumerate() {
        let mine = &acked_at[c.community];
        let want: HashSet<u64> = mine.iter().map(|a| a.0).collect();
        let ids = c.ids.lock().map(|i| i.clone()).unwrap_or_default();
        let mut seen = HashSet::new();
        for w in ids.windows(2) {
            if w[1] <= w[0] {
                disorder += 1;
            }
        }
        for id in &ids {
            if !seen.insert(*id) {
                twice += 1;
            }
        }
        let missed = want.difference(&seen).count() as u64;
        lost += missed;
        if missed > 0 && told < 10 {
            told += 1;
            eprintln!("rolling: {}", where_lost(i, c, mine, &seen));
        }
        disorder += c.out_of_seq.load(Ordering::Relaxed);
        reidentified += u64::from(c.reidentified.load(Ordering::Relaxed));
        reconnects += c.reconnects.load(Ordering::Relaxed);
        if let Ok(h) = c.back_us.lock() {
            let _ = back.add(&*h);
        }
    }
    let unacked = unacked.load(Ordering::Relaxed);
    let verdict = json!({
        "messages_acknowledged": acked_count,
        "messages_unacknowledged": unacked,
        "send_retries": retries.load(Ordering::Relaxed),
        "clients": n,
        "accounts": per * k,
        "communities": k,
        "lost": lost,
        "duplicates": twice,
        "out_of_order": disorder,
        "reidentified": reidentified,
        "reconnects": reconnects,
    });
    let sends = sends
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| histogram());
    let out = vec![
        Outcome {
            name: "rolling sends".into(),
            requests: acked_count as u64,
            errors: unacked,
            seconds: sent_for.as_secs_f64(),
            latency_us: sends,
            server_rss_kib: None,
            notes: format!(
                "first attempt → 201; {} retries with the same nonce",
                retries.load(Ordering::Relaxed)
            ),
            extra: verdict.clone(),
        },
        Outcome {
            name: "rolling resumes".into(),
            requests: reconnects,
            errors: reidentified,
            seconds: sent_for.as_secs_f64(),
            latency_us: back,
            server_rss_kib: None,
            notes: format!(
                "close → RESUMED; lost {lost}, duplicates {twice}, out of order {disorder}, re-identified {reidentified}"
            ),
            extra: verdict,
        },
    ];
    if lost + twice + disorder + reidentified + unacked > 0 {
        crate::report::print(args, &out);
        return Err(format!(
            "rolling restart broke the guarantees: lost {lost}, duplicates {twice}, out of order {disorder}, re-identified {reidentified}, unacknowledged {unacked}"
        ));
    }
    Ok(out)
}

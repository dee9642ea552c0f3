//! Overload: the members of one channel read while messages are sent
//! faster than the server can deliver them (`--rate`, meant as twice the
//! sustainable rate) for `--duration` seconds, and `--slow` percent of the
//! readers misbehave as phones on a bad network do: with a small receive
//! buffer, a third stop reading for `--pause` seconds, a third for twice as
//! long, and a third lose their connection for 2 s.
//!
//! The contract's promise under overload: a connection that falls behind
//! is closed and its session stays resumable; nothing is skipped silently.
//! Every client here behaves as the web app does: on a close it resumes
//! with its last sequence; on `invalid_session` it identifies again and
//! fetches `messages?after=<last seen id>` over REST. After the sends, the
//! run waits for the backlog to drain (until every client has every
//! acknowledged message, or nothing has arrived anywhere for 15 s), then
//! reports each (client, message) once as delivered live, late (replayed
//! by a resume), late (fetched over REST) or never delivered. A message
//! never delivered, a message received twice on the gateway, or one out of
//! ID order on it fails the run: a client missing one in the middle of its
//! stream without a close would show as all three.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::client::{Resumed, Ws, field, identify, resume, seq_of};
use super::cohort;
use super::probe::histogram;
use super::rolling::send_one;
use crate::Args;
use crate::report::Outcome;
use crate::server::Server;

/// How a client first got a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum How {
    Live,
    Replayed,
    Fetched,
}

/// When each message was first sent (µs since the run's start; 0: not yet).
struct Sent {
    start: Instant,
    at_us: Vec<AtomicU64>,
}

impl Sent {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

struct Client {
    token: String,
    sent: Arc<Sent>,
    /// Send → receipt of the messages delivered live, in µs.
    latency: Mutex<hdrhistogram::Histogram<u64>>,
    /// Reads slowly (see the module's comment).
    slow: bool,
    session: Mutex<String>,
    last_s: AtomicU64,
    /// The highest message id seen (the REST catch-up starts after it).
    last_id: AtomicU64,
    got: Mutex<HashMap<u64, How>>,
    /// Gateway dispatches of a message already received (a bug).
    twice: AtomicU64,
    /// A message id at or below the last one received on the gateway, or a
    /// sequence at or below the last one (a bug).
    disorder: AtomicU64,
    closes: AtomicU64,
    invalid: AtomicU64,
    /// Set while a resume replays: what arrives then is late.
    replaying: AtomicBool,
    /// Set during the REST catch-up after `invalid_session`: ids fetched
    /// then may come again live (sent between READY and the fetch).
    fetched_upto: AtomicU64,
    /// `Some(after)` while a catch-up over REST is owed (from
    /// `invalid_session` until the channel's end is fetched), kept across
    /// reconnects so an interrupted catch-up continues where it stopped.
    fetch_from: Mutex<Option<u64>>,
    /// Connecting, catching up or stalled (the drain waits for these).
    busy: AtomicBool,
}

/// A message of this run in a frame: its id and its number.
fn message_id(frame: &str) -> Option<(u64, usize)> {
    if !frame.contains("\"t\":\"MESSAGE_CREATE\"") {
        return None;
    }
    let k = field(frame, "content")?
        .strip_prefix("overload ")?
        .parse()
        .ok()?;
    // Parsed in full: the message's own id is not the frame's first "id".
    let v: serde_json::Value = serde_json::from_str(frame).ok()?;
    Some((v["d"]["id"].as_str()?.parse().ok()?, k))
}

impl Client {
    fn see(&self, frame: &str) {
        if let Some(s) = seq_of(frame) {
            if s <= self.last_s.load(Ordering::Relaxed) {
                self.disorder.fetch_add(1, Ordering::Relaxed);
            } else {
                self.last_s.store(s, Ordering::Relaxed);
            }
        }
        let Some((id, k)) = message_id(frame) else {
            return;
        };
        let how = if self.replaying.load(Ordering::Relaxed) {
            How::Replayed
        } else {
            How::Live
        };
        if how == How::Live
            && let Some(at) = self.sent.at_us.get(k).map(|a| a.load(Ordering::Relaxed))
            && let Ok(mut h) = self.latency.lock()
        {
            let _ = h.record(self.sent.now_us().saturating_sub(at));
        }
        let Ok(mut got) = self.got.lock() else {
            return;
        };
        if got.contains_key(&id) {
            // Fetched over REST and then sent live as well is expected
            // (identify came before the fetch); anything else is a repeat.
            if id > self.fetched_upto.load(Ordering::Relaxed) {
                self.twice.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if id <= self.last_id.load(Ordering::Relaxed) {
            self.disorder.fetch_add(1, Ordering::Relaxed);
        } else {
            self.last_id.store(id, Ordering::Relaxed);
        }
        got.insert(id, how);
    }

    fn count(&self) -> usize {
        self.got.lock().map_or(0, |g| g.len())
    }
}

/// A slow reader's small receive buffer.
const SLOW_RECV_BUFFER: u32 = 8 * 1024;

async fn dial(addr: SocketAddr, i: usize, slow: bool) -> Result<Ws, String> {
    super::client::dial_with(addr, i, slow.then_some(SLOW_RECV_BUFFER)).await
}

/// After `invalid_session`: every message after the last one seen, over
/// REST, oldest first, page by page, from where the catch-up stands.
async fn fetch_missed(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    c: &Client,
) -> Result<(), String> {
    loop {
        let Some(after) = c.fetch_from.lock().ok().and_then(|f| *f) else {
            return Ok(());
        };
        let page: Vec<serde_json::Value> = http
            .get(format!(
                "{base}/api/v1/channels/{channel}/messages?after={after}&limit=100"
            ))
            .bearer_auth(&c.token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let ids: Vec<u64> = page
            .iter()
            .filter(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("overload "))
            })
            .filter_map(|m| m["id"].as_str()?.parse().ok())
            .collect();
        let newest = page
            .iter()
            .filter_map(|m| m["id"].as_str()?.parse::<u64>().ok())
            .max();
        if let Ok(mut got) = c.got.lock() {
            for id in ids {
                got.entry(id).or_insert(How::Fetched);
            }
        }
        let next = match newest {
            Some(n) if n > after && page.len() == 100 => Some(n),
            _ => None,
        };
        if let Some(n) = newest {
            c.last_id.fetch_max(n, Ordering::Relaxed);
            c.fetched_upto.fetch_max(n, Ordering::Relaxed);
        }
        if let Ok(mut f) = c.fetch_from.lock() {
            *f = next;
        }
        if next.is_none() {
            return Ok(());
        }
    }
}

/// Connects (identify, or resume after a close; identify and fetch on
/// `invalid_session`), reads until the connection ends, and again, until
/// `stop`. A slow client stops reading once, for `pause` (or, with a zero
/// `pause`, drops its connection and comes back 2 s later), `pause_at` after
/// it starts.
async fn run_client(
    addr: SocketAddr,
    i: usize,
    c: Arc<Client>,
    (http, base, channel): (reqwest::Client, String, String),
    stop: Arc<AtomicBool>,
    (pause_at, pause): (Arc<Mutex<Option<Instant>>>, Duration),
) {
    use futures::{SinkExt, StreamExt};
    let mut paused = !c.slow;
    let mut dropped = false;
    let mut backoff = Duration::from_millis(200);
    while !stop.load(Ordering::Relaxed) {
        c.busy.store(true, Ordering::Relaxed);
        let connected = tokio::time::timeout(Duration::from_secs(30), async {
            let mut ws = dial(addr, i, c.slow).await?;
            let session = c.session.lock().map(|s| s.clone()).unwrap_or_default();
            if !session.is_empty() {
                let s = c.last_s.load(Ordering::Relaxed);
                c.replaying.store(true, Ordering::Relaxed);
                let mut see = |f: &str| c.see(f);
                let r = resume(&mut ws, &c.token, &session, s, &mut see).await;
                c.replaying.store(false, Ordering::Relaxed);
                match r? {
                    Resumed::Resumed => return Ok(ws),
                    Resumed::Invalid => {
                        c.invalid.fetch_add(1, Ordering::Relaxed);
                        // Owed: everything after the last message seen (or
                        // after where an earlier catch-up stands).
                        if let Ok(mut f) = c.fetch_from.lock() {
                            f.get_or_insert(c.last_id.load(Ordering::Relaxed));
                        }
                    }
                }
            }
            let id = identify(&mut ws, &c.token).await?;
            if let Ok(mut g) = c.session.lock() {
                *g = id;
            }
            c.last_s.store(1, Ordering::Relaxed);
            Ok::<Ws, String>(ws)
        })
        .await;
        let ws = match connected {
            Ok(Ok(ws)) => ws,
            failed => {
                if std::env::var_os("OVERLOAD_DEBUG").is_some() {
                    eprintln!(
                        "overload: client {i} could not connect: {:?}",
                        failed.map(|r| r.err())
                    );
                }
                // Backing off (with a per-client jitter), as a real client
                // does, so a crowd of them does not hammer an overloaded server.
                let jitter = Duration::from_millis((i as u64 * 37) % 250);
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // A catch-up owed (now, or left unfinished by a lost connection).
        if fetch_missed(&http, &base, &channel, &c).await.is_err() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(200);
        c.busy.store(false, Ordering::Relaxed);
        let (mut tx, mut rx) = ws.split();
        let mut beat = tokio::time::interval(Duration::from_secs(20));
        beat.tick().await;
        let mut check = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    let s = c.last_s.load(Ordering::Relaxed);
                    if tx.send(tokio_tungstenite::tungstenite::Message::Text(json!({"op": "heartbeat", "d": {"s": s}}).to_string().into())).await.is_err() { break; }
                }
                _ = check.tick() => {
                    if stop.load(Ordering::Relaxed) { return; }
                    let due = pause_at.lock().ok().and_then(|a| *a);
                    if !paused && due.is_some_and(|at| Instant::now() >= at) {
                        paused = true;
                        if pause.is_zero() {
                            dropped = true;
                            break;
                        }
                        c.busy.store(true, Ordering::Relaxed);
                        tokio::time::sleep(pause).await;
                        c.busy.store(false, Ordering::Relaxed);
                    }
                }
                m = rx.next() => match m {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => c.see(t.as_str()),
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
        c.closes.fetch_add(1, Ordering::Relaxed);
        if std::mem::take(&mut dropped) {
            // Out of coverage for a moment, then back with a resume.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

pub async fn overload(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let base = server.base.clone();
    let n = args.connections;
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &base, "overload_owner").await?;
    let users = args.users.unwrap_or(n.div_ceil(10)).clamp(1, n.max(1));
    let mut made = cohort::communities(&http, &base, "overload", &owner, 1, users).await?;
    let community = made.pop().ok_or("no community")?;
    let slow_every = if args.slow == 0 {
        usize::MAX
    } else {
        (100 / args.slow.min(100)).max(1)
    };
    let total = args.rate * args.duration;
    let sent = Arc::new(Sent {
        start: Instant::now(),
        at_us: (0..total).map(|_| AtomicU64::new(0)).collect(),
    });
    let clients: Vec<Arc<Client>> = (0..n)
        .map(|i| {
            Arc::new(Client {
                token: community.members[i % users].token.clone(),
                sent: sent.clone(),
                latency: Mutex::new(histogram()),
                slow: i % slow_every == slow_every - 1,
                session: Mutex::new(String::new()),
                last_s: AtomicU64::new(0),
                last_id: AtomicU64::new(0),
                got: Mutex::new(HashMap::new()),
                twice: AtomicU64::new(0),
                disorder: AtomicU64::new(0),
                closes: AtomicU64::new(0),
                invalid: AtomicU64::new(0),
                replaying: AtomicBool::new(false),
                fetched_upto: AtomicU64::new(0),
                fetch_from: Mutex::new(None),
                busy: AtomicBool::new(false),
            })
        })
        .collect();
    let slow = clients.iter().filter(|c| c.slow).count();
    let stop = Arc::new(AtomicBool::new(false));
    // Slow readers stop reading a sixth of the way into the sends (so the
    // long stalls miss more than a replay window at any rate).
    let pause_at = Arc::new(Mutex::new(None::<Instant>));
    let pause = Duration::from_secs(args.pause);
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let addr = server.nodes[i % server.nodes.len()].addr();
            let rest = (http.clone(), base.clone(), community.channel.clone());
            // A third of the slow readers stall for --pause, a third twice
            // as long (out of their session's replay window), and a third
            // lose their connection for 2 s: each way back (live after the
            // stall, invalid_session + REST, resume) is taken.
            let stall = match (i / slow_every) % 3 {
                0 => pause,
                1 => pause * 2,
                _ => Duration::ZERO,
            };
            tokio::spawn(run_client(
                addr,
                i,
                c.clone(),
                rest,
                stop.clone(),
                (pause_at.clone(), stall),
            ))
        })
        .collect();
    // Everyone identified before the first message.
    let start = Instant::now();
    while clients
        .iter()
        .any(|c| c.session.lock().map_or(true, |s| s.is_empty()))
    {
        if start.elapsed() > Duration::from_secs(120) {
            stop.store(true, Ordering::Relaxed);
            return Err("clients did not identify within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "overload: {n} clients ({users} accounts, {slow} slow readers pausing {} s) identified; sending {} msg/s for {} s",
        args.pause, args.rate, args.duration
    );
    if let Ok(mut p) = pause_at.lock() {
        *p = Some(Instant::now() + Duration::from_secs_f64(args.duration as f64 / 6.0));
    }
    // The sender: an open loop at --rate, each message retried until
    // acknowledged (same nonce), as the web app's outbox does.
    let sends = Arc::new(Mutex::new(histogram()));
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let unacked = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    let mut pending = Vec::new();
    let sending = Instant::now();
    for k in 0..total {
        tick.tick().await;
        sent.at_us[k as usize].store(sent.now_us(), Ordering::Relaxed);
        let (http, base, channel, token) = (
            http.clone(),
            base.clone(),
            community.channel.clone(),
            owner.token.clone(),
        );
        let (sends, acked, unacked) = (sends.clone(), acked.clone(), unacked.clone());
        pending.push(tokio::spawn(async move {
            match send_one(&http, &base, &channel, &token, "overload", k).await {
                Ok((id, took, _)) => {
                    if let Ok(mut h) = sends.lock() {
                        let _ = h.record(took.as_micros() as u64);
                    }
                    if let Ok(mut a) = acked.lock() {
                        a.push(id);
                    }
                }
                Err(e) => {
                    eprintln!("overload: {e}");
                    unacked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for p in pending {
        let _ = p.await;
    }
    let sent_for = sending.elapsed();
    let mut acked: Vec<u64> = acked.lock().map(|a| a.clone()).unwrap_or_default();
    acked.sort_unstable();
    acked.dedup();
    // The backlog drains: wait while anything still arrives anywhere.
    let drain = Instant::now();
    let mut last_total = 0usize;
    let mut quiet_since = Instant::now();
    // Stalled readers read again only once their stall is over.
    let stalls_end = pause_at
        .lock()
        .ok()
        .and_then(|p| *p)
        .map_or(drain, |at| at + pause * 2);
    loop {
        let have: usize = clients.iter().map(|c| c.count()).sum();
        if clients.iter().all(|c| c.count() >= acked.len()) {
            break;
        }
        if have != last_total {
            last_total = have;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(15)
            && Instant::now() > stalls_end
            && !clients.iter().any(|c| c.busy.load(Ordering::Relaxed))
        {
            break;
        }
        if drain.elapsed().as_secs().is_multiple_of(10) && drain.elapsed().subsec_millis() < 100 {
            eprintln!(
                "overload: draining {:.0} s: {} of {} deliveries, {} readers incomplete, {} connecting or catching up",
                drain.elapsed().as_secs_f64(),
                have,
                acked.len() * n,
                clients.iter().filter(|c| c.count() < acked.len()).count(),
                clients
                    .iter()
                    .filter(|c| c.busy.load(Ordering::Relaxed))
                    .count()
            );
        }
        // However busy, a run ends: what is missing then counts as never.
        if drain.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_in = drain.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    let (mut live, mut replayed, mut fetched, mut never) = (0u64, 0u64, 0u64, 0u64);
    let (mut twice, mut disorder, mut closes, mut invalid, mut closed_clients) = (0, 0, 0, 0, 0);
    let mut told = 0;
    let mut delivery = histogram();
    for (i, c) in clients.iter().enumerate() {
        if let Ok(h) = c.latency.lock() {
            let _ = delivery.add(&*h);
        }
        let got = c.got.lock().map(|g| g.clone()).unwrap_or_default();
        let mut missing = 0;
        for id in &acked {
            match got.get(id) {
                Some(How::Live) => live += 1,
                Some(How::Replayed) => replayed += 1,
                Some(How::Fetched) => fetched += 1,
                None => missing += 1,
            }
        }
        never += missing;
        if missing > 0 && told < 10 {
            told += 1;
            eprintln!(
                "overload: client {i}{} never got {missing} of {} (closed {} times, invalid_session {} times)",
                if c.slow { " (slow)" } else { "" },
                acked.len(),
                c.closes.load(Ordering::Relaxed),
                c.invalid.load(Ordering::Relaxed)
            );
        }
        twice += c.twice.load(Ordering::Relaxed);
        disorder += c.disorder.load(Ordering::Relaxed);
        let cl = c.closes.load(Ordering::Relaxed);
        closes += cl;
        closed_clients += u64::from(cl > 0);
        invalid += c.invalid.load(Ordering::Relaxed);
    }
    let unacked = unacked.load(Ordering::Relaxed);
    let expected = acked.len() as u64 * n as u64;
    let verdict = json!({
        "clients": n,
        "accounts": users,
        "slow_readers": slow,
        "rate": args.rate,
        "seconds": args.duration,
        "messages_acknowledged": acked.len(),
        "messages_unacknowledged": unacked,
        "deliveries_expected": expected,
        "live": live,
        "late_replayed": replayed,
        "late_fetched": fetched,
        "never": never,
        "duplicates": twice,
        "out_of_order": disorder,
        "closes": closes,
        "clients_closed": closed_clients,
        "invalid_sessions": invalid,
        "drained_secs": drained_in.as_secs_f64(),
        "live_p50_ms": delivery.value_at_quantile(0.5) as f64 / 1000.0,
        "live_p99_ms": delivery.value_at_quantile(0.99) as f64 / 1000.0,
        "live_max_ms": delivery.max() as f64 / 1000.0,
        "live_over_1s": delivery.count_between(1_000_000, u64::MAX),
    });
    let sends = sends
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| histogram());
    let out = vec![Outcome {
        name: "gw-overload".into(),
        requests: acked.len() as u64,
        errors: unacked,
        seconds: sent_for.as_secs_f64(),
        latency_us: sends,
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "{n} clients, {} msg/s offered for {} s ({:.0} deliveries/s): {live} live (send → receipt p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} over 1 s), {replayed} late by resume, {fetched} late by REST, {never} never; {closed_clients} clients closed ({closes} closes, {invalid} invalid_session); duplicates {twice}, out of order {disorder}; drained {:.1} s after the last send (sends: the latency columns)",
            args.rate,
            args.duration,
            args.rate as f64 * n as f64,
            delivery.value_at_quantile(0.5) as f64 / 1000.0,
            delivery.value_at_quantile(0.99) as f64 / 1000.0,
            delivery.max() as f64 / 1000.0,
            delivery.count_between(1_000_000, u64::MAX),
            drained_in.as_secs_f64()
        ),
        extra: verdict,
    }];
    if never + twice + disorder + unacked > 0 {
        crate::report::print(args, &out);
        return Err(format!(
            "overload broke the guarantees: never delivered {never}, duplicates {twice}, out of order {disorder}, unacknowledged {unacked}"
        ));
    }
    Ok(out)
}

//! `search-fresh`: how soon a sent message can be found, under a send load.
//!
//! Senders (distinct accounts, `--users`, default 100) post varied text to
//! `--channels` channels of one community (at most 20), paced so that
//! together they send `--rate` messages a second (open loop: a slow answer
//! does not slow the offered load). Four more members are probes: every
//! 100 ms one sends a message carrying a word no other message has, then
//! searches the community for that word every 5 ms until it is found. The
//! figure is from the start of the send (so it includes the send itself)
//! to the first search that finds it: what a user who searches right after
//! someone sent would see.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{Value, json};

use crate::Args;
use crate::audit::histogram;
use crate::report::Outcome;
use crate::scenarios::{Account, client, join, json_of, register};
use crate::server::Server;

const PROBES: usize = 4;
/// A probe's pause between two probes (four probes: one every 25 ms).
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Words the senders' messages are made of (a few common, most rare, like
/// chat), so the index has real postings to merge.
fn vocabulary() -> Vec<String> {
    const COMMON: &[&str] = &[
        "the", "a", "to", "and", "is", "it", "deploy", "build", "meeting", "lunch", "today",
        "tomorrow", "please", "thanks", "review", "server", "error", "fixed", "ship", "test",
    ];
    let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
    let syllables = ["ka", "lo", "mi", "ra", "te", "vo", "zu", "ne", "pi", "sa"];
    for a in syllables {
        for b in syllables {
            for c in syllables {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

fn sentence(words: &[String], rng: &mut impl Rng) -> String {
    let n = rng.random_range(4..16);
    (0..n)
        .map(|_| {
            // Half the words from the 20 common ones.
            if rng.random_bool(0.5) {
                words[rng.random_range(0..20)].as_str()
            } else {
                words[rng.random_range(20..words.len())].as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    who: &Account,
    channel: &str,
    text: &str,
) -> bool {
    let res = http
        .post(format!("{base}/api/v1/channels/{channel}/messages"))
        .bearer_auth(&who.token)
        .json(&json!({ "content": text }))
        .send()
        .await;
    match res {
        Ok(r) if r.status().as_u16() == 201 => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// How many messages of the community match `word`, or `None` on an error.
async fn found(
    http: &reqwest::Client,
    base: &str,
    who: &Account,
    community: &str,
    word: &str,
) -> Option<u64> {
    let v: Value = json_of(
        http.get(format!(
            "{base}/api/v1/communities/{community}/messages/search?q={word}&limit=1"
        ))
        .bearer_auth(&who.token),
    )
    .await
    .ok()?;
    v["total"].as_u64()
}

pub async fn fresh(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = client();
    let base = server.base.clone();
    let users = args.users.unwrap_or(100).max(1);
    let channels_n = args.channels.clamp(1, 20);

    let owner = register(&http, &base, "search_owner").await?;
    let c = json_of(
        http.post(format!("{base}/api/v1/communities"))
            .bearer_auth(&owner.token)
            .json(&json!({"name": "Search load"})),
    )
    .await?;
    let community = c["id"].as_str().ok_or("no community id")?.to_string();
    let first = json_of(
        http.get(format!("{base}/api/v1/communities/{community}/channels"))
            .bearer_auth(&owner.token),
    )
    .await?;
    let mut channels = vec![first[0]["id"].as_str().ok_or("no channel")?.to_string()];
    for i in 1..channels_n {
        let ch = json_of(
            http.post(format!("{base}/api/v1/communities/{community}/channels"))
                .bearer_auth(&owner.token)
                .json(&json!({"name": format!("load-{i}")})),
        )
        .await?;
        channels.push(ch["id"].as_str().ok_or("no channel id")?.to_string());
    }
    let inv = json_of(
        http.post(format!("{base}/api/v1/communities/{community}/invites"))
            .bearer_auth(&owner.token)
            .json(&json!({})),
    )
    .await?;
    let code = inv["code"].as_str().ok_or("no invite")?.to_string();
    let mut senders = Vec::with_capacity(users);
    for i in 0..users + PROBES {
        let a = register(&http, &base, &format!("search_{i}")).await?;
        join(&http, &base, &code, &a).await?;
        senders.push(Arc::new(a));
    }
    let probes: Vec<Arc<Account>> = senders.split_off(users);
    let words = Arc::new(vocabulary());
    let channels = Arc::new(channels);

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // Each sender's share of the rate, as a period between its messages.
    let period = Duration::from_secs_f64(users as f64 / args.rate.max(1) as f64);
    let mut tasks = Vec::new();
    for (i, who) in senders.into_iter().enumerate() {
        let (http, base, words, channels) =
            (http.clone(), base.clone(), words.clone(), channels.clone());
        let (measuring, stop, sent, errors) = (
            measuring.clone(),
            stop.clone(),
            sent.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut answered = histogram();
            let offset = period.mul_f64(i as f64 / users as f64);
            let mut next = tokio::time::Instant::now() + offset;
            let channel = &channels[i % channels.len()];
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(next).await;
                next += period;
                let text = sentence(&words, &mut rand::rng());
                let t = Instant::now();
                let ok = send(&http, &base, &who, channel, &text).await;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        sent.fetch_add(1, Ordering::Relaxed);
                        let _ = answered.record(t.elapsed().as_micros().max(1) as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (answered, histogram(), 0u64)
        }));
    }
    for (p, who) in probes.into_iter().enumerate() {
        let (http, base, channels, community) = (
            http.clone(),
            base.clone(),
            channels.clone(),
            community.clone(),
        );
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut fresh = histogram();
            let mut missed = 0u64;
            tokio::time::sleep(PROBE_EVERY.mul_f64(p as f64 / PROBES as f64)).await;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let word = format!("probe{p}x{n}marker");
                let channel = &channels[(p + n as usize) % channels.len()];
                let t = Instant::now();
                let counted = measuring.load(Ordering::Relaxed);
                if send(
                    &http,
                    &base,
                    &who,
                    channel,
                    &format!("looking for {word} here"),
                )
                .await
                {
                    let deadline = t + Duration::from_secs(30);
                    loop {
                        if found(&http, &base, &who, &community, &word)
                            .await
                            .unwrap_or(0)
                            >= 1
                        {
                            if counted {
                                let _ = fresh.record(t.elapsed().as_micros().max(1) as u64);
                            }
                            break;
                        }
                        if Instant::now() > deadline {
                            missed += 1;
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                let left = PROBE_EVERY.saturating_sub(t.elapsed());
                tokio::time::sleep(left).await;
            }
            (histogram(), fresh, missed)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(args.duration()).await;
    measuring.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut answered, mut fresh, mut missed) = (histogram(), histogram(), 0);
    for t in tasks {
        if let Ok((a, f, m)) = t.await {
            let _ = answered.add(a);
            let _ = fresh.add(f);
            missed += m;
        }
    }
    let done = sent.load(Ordering::Relaxed);
    let rss = server.rss_kib();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let extra = json!({
        "offered_per_sec": args.rate,
        "sent_per_sec": done as f64 / secs,
        "fresh_samples": fresh.len(),
        "fresh_missed": missed,
        "fresh_ms": {"p50": ms(&fresh, 0.5), "p99": ms(&fresh, 0.99), "max": fresh.max() as f64 / 1000.0},
    });
    let samples = fresh.len();
    Ok(vec![
        Outcome {
            name: "search-fresh sends".into(),
            requests: done,
            errors: errors.load(Ordering::Relaxed),
            seconds: secs,
            latency_us: answered,
            server_rss_kib: rss,
            notes: format!(
                "{users} senders (distinct accounts) over {channels_n} channels of one community, {} msg/s offered in all",
                args.rate
            ),
            extra: extra.clone(),
        },
        Outcome {
            name: "search-fresh".into(),
            requests: samples,
            errors: missed,
            seconds: secs,
            latency_us: fresh,
            server_rss_kib: rss,
            notes: format!(
                "{PROBES} probes: from the start of a send to the first GET /communities/{{id}}/messages/search that finds its unique word (polled every 5 ms)"
            ),
            extra,
        },
    ])
}

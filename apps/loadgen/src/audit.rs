//! `audit-lag`: how far the audit log trails moderation under load.
//!
//! Moderators (distinct accounts, each owning a community, as many as
//! `--users`, default 100) change their channel's topic, paced so that
//! together they make `--rate` changes a second (open loop: a slow answer
//! does not slow the offered load). Every change is an audited action the
//! durable audit consumer records from the event log.
//!
//! Four of the moderators are probes: after each change is answered, a
//! probe polls its community's audit log every 5 ms until the entry is
//! there. The lag recorded is from the answer to the entry being readable
//! (so it includes the poll's own round trip, at most 5 ms of waiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::Args;
use crate::report::Outcome;
use crate::scenarios::{Account, client, json_of, register};
use crate::server::Server;

const PROBES: usize = 4;

struct Moderator {
    account: Account,
    community: String,
    channel: String,
}

async fn moderator(http: &reqwest::Client, base: &str, i: usize) -> Result<Moderator, String> {
    let account = register(http, base, &format!("audit_mod_{i}")).await?;
    let c = json_of(
        http.post(format!("{base}/api/v1/communities"))
            .bearer_auth(&account.token)
            .json(&json!({"name": format!("Moderated {i}")})),
    )
    .await?;
    let community = c["id"].as_str().ok_or("no community id")?.to_string();
    let chans = json_of(
        http.get(format!("{base}/api/v1/communities/{community}/channels"))
            .bearer_auth(&account.token),
    )
    .await?;
    let channel = chans[0]["id"].as_str().ok_or("no channel")?.to_string();
    Ok(Moderator {
        account,
        community,
        channel,
    })
}

async fn change_topic(http: &reqwest::Client, base: &str, m: &Moderator, n: u64) -> bool {
    let res = http
        .patch(format!("{base}/api/v1/channels/{}", m.channel))
        .bearer_auth(&m.account.token)
        .header("X-Audit-Log-Reason", "load test")
        .json(&json!({"topic": format!("topic {n}")}))
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// The newest audit entry's id in the moderator's community.
async fn newest_entry(http: &reqwest::Client, base: &str, m: &Moderator) -> Option<String> {
    let v: Value = json_of(
        http.get(format!(
            "{base}/api/v1/communities/{}/audit-log?limit=1",
            m.community
        ))
        .bearer_auth(&m.account.token),
    )
    .await
    .ok()?;
    v.get(0)?["id"].as_str().map(str::to_owned)
}

/// Microseconds up to ten minutes (audit lag and search freshness).
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"))
}

pub async fn lag(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = client();
    let base = server.base.clone();
    let users = args.users.unwrap_or(100).max(PROBES + 1);
    let mut mods = Vec::with_capacity(users);
    for i in 0..users {
        mods.push(Arc::new(moderator(&http, &base, i).await?));
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let actions = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // Each moderator's share of the rate, as a period between changes.
    let period = Duration::from_secs_f64(users as f64 / args.rate.max(1) as f64);
    let mut tasks = Vec::new();
    for (i, m) in mods.iter().enumerate() {
        let (http, base, m) = (http.clone(), base.clone(), m.clone());
        let (measuring, stop, actions, errors) = (
            measuring.clone(),
            stop.clone(),
            actions.clone(),
            errors.clone(),
        );
        let probe = i < PROBES;
        tasks.push(tokio::spawn(async move {
            let (mut answered, mut lagged) = (histogram(), histogram());
            // Spread the moderators' starts over one period.
            let offset = period.mul_f64(i as f64 / users as f64);
            let mut next = tokio::time::Instant::now() + offset;
            let mut seen = if probe {
                newest_entry(&http, &base, &m).await
            } else {
                None
            };
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(next).await;
                next += period;
                n += 1;
                let t = Instant::now();
                let ok = change_topic(&http, &base, &m, n).await;
                let counted = measuring.load(Ordering::Relaxed);
                if counted {
                    if ok {
                        actions.fetch_add(1, Ordering::Relaxed);
                        let _ = answered.record(t.elapsed().as_micros() as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if probe && ok {
                    let done = Instant::now();
                    let deadline = done + Duration::from_secs(60);
                    loop {
                        let now = newest_entry(&http, &base, &m).await;
                        if now.is_some() && now != seen {
                            seen = now;
                            if counted {
                                let _ = lagged.record(done.elapsed().as_micros().max(1) as u64);
                            }
                            break;
                        }
                        if Instant::now() > deadline {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            (answered, lagged)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(args.duration()).await;
    measuring.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut answered, mut lagged) = (histogram(), histogram());
    for t in tasks {
        if let Ok((a, l)) = t.await {
            let _ = answered.add(a);
            let _ = lagged.add(l);
        }
    }
    let done = actions.load(Ordering::Relaxed);
    let errs = errors.load(Ordering::Relaxed);
    let rss = server.rss_kib();
    let lag_ms = |q: f64| lagged.value_at_quantile(q) as f64 / 1000.0;
    let extra = json!({
        "offered_per_sec": args.rate,
        "audited_per_sec": done as f64 / secs,
        "lag_samples": lagged.len(),
        "lag_ms": {"p50": lag_ms(0.5), "p99": lag_ms(0.99), "max": lagged.max() as f64 / 1000.0},
    });
    let lag_samples = lagged.len();
    Ok(vec![
        Outcome {
            name: "audit-lag actions".into(),
            requests: done,
            errors: errs,
            seconds: secs,
            latency_us: answered,
            server_rss_kib: rss,
            notes: format!(
                "{users} moderators (distinct accounts, a community each) changing a channel topic, {} changes/s offered in all",
                args.rate
            ),
            extra: extra.clone(),
        },
        Outcome {
            name: "audit-lag lag".into(),
            requests: lag_samples,
            errors: 0,
            seconds: secs,
            latency_us: lagged,
            server_rss_kib: rss,
            notes: format!(
                "{PROBES} probes: from a change's answer to its entry in GET /communities/{{id}}/audit-log (polled every 5 ms)"
            ),
            extra,
        },
    ])
}

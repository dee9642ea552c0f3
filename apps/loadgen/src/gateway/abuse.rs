//! `abuse`: can one user stall the gateway for everyone? `--connections`
//! distinct users in one community, each with one connection, receive the
//! owner's messages at `--rate` msg/s. First a quiet phase, then the same
//! with two abusers working as fast as the server's rate limits let them:
//! one joins and leaves the community in a loop, the other creates group
//! DMs with members of it. Each abuser holds `--abuser-sessions`
//! connections (the per-user maximum by default), so each of their joins,
//! leaves and DMs concerns as many sessions as it can.
//!
//! The server runs with its shipped per-user rate limits (20 requests/s,
//! burst 100) and group-DM quota (100 a day); only the per-address limits
//! are lifted, since every request here comes from one address.
//!
//! Rows: MESSAGE_CREATE send-to-receive latency for the members in each
//! phase (the target: abuse p99 within 2× quiet), and what the abusers
//! managed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::seq::IndexedRandom;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::client::{Target, open_many};
use super::fanout::{open_recording, send_at, spread};
use super::probe::{Probe, WARMUP};
use super::{Poster, cohort};
use crate::Args;
use crate::report::Outcome;
use crate::scenarios::{Account, client, json_of, register};
use crate::server::Server;

const QUIET: usize = 1;
const ABUSE: usize = 2;

#[derive(Default)]
struct Tally {
    joins: AtomicU64,
    leaves: AtomicU64,
    dms: AtomicU64,
    refused: AtomicU64,
    limited: AtomicU64,
}

/// Waits out a 429 (its `Retry-After`, at most a second, so a day-long
/// quota does not park the abuser: it keeps knocking).
async fn back_off(res: &reqwest::Response) {
    let secs = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.05);
    tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.01, 1.0))).await;
}

async fn join_leave(
    http: reqwest::Client,
    base: String,
    who: Account,
    (community, code): (String, String),
    stop: Arc<AtomicBool>,
    t: Arc<Tally>,
) {
    while !stop.load(Ordering::Relaxed) {
        let res = http
            .post(format!("{base}/api/v1/invites/{code}"))
            .bearer_auth(&who.token)
            .send()
            .await;
        match res {
            Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
                t.limited.fetch_add(1, Ordering::Relaxed);
                back_off(&r).await;
                continue;
            }
            Ok(r) if r.status().is_success() => {
                t.joins.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                t.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let res = http
                .delete(format!("{base}/api/v1/communities/{community}/members/@me"))
                .bearer_auth(&who.token)
                .send()
                .await;
            match res {
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
                    t.limited.fetch_add(1, Ordering::Relaxed);
                    back_off(&r).await;
                }
                Ok(r) => {
                    if r.status().is_success() {
                        t.leaves.fetch_add(1, Ordering::Relaxed);
                    } else {
                        t.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

async fn group_dms(
    http: reqwest::Client,
    base: String,
    who: Account,
    members: Vec<String>,
    stop: Arc<AtomicBool>,
    t: Arc<Tally>,
) {
    while !stop.load(Ordering::Relaxed) {
        let n = rand::random_range(2..=9usize);
        let ids: Vec<String> = members
            .choose_multiple(&mut rand::rng(), n)
            .cloned()
            .collect();
        let res = http
            .post(format!("{base}/api/v1/dms"))
            .bearer_auth(&who.token)
            .json(&json!({ "user_ids": ids }))
            .send()
            .await;
        match res {
            Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
                t.limited.fetch_add(1, Ordering::Relaxed);
                back_off(&r).await;
            }
            Ok(r) if r.status().is_success() => {
                t.dms.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                t.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub async fn abuse(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = client();
    let base = server.base.clone();
    let owner = register(&http, &base, "abuse_owner").await?;
    let mut made = cohort::communities(&http, &base, "abuse", &owner, 1, args.connections).await?;
    let big = made.pop().ok_or("no community")?;
    let ch = json_of(
        http.get(format!("{base}/api/v1/channels/{}", big.channel))
            .bearer_auth(&owner.token),
    )
    .await?;
    let community = ch["community_id"]
        .as_str()
        .ok_or("no community id")?
        .to_string();
    let inv = json_of(
        http.post(format!("{base}/api/v1/communities/{community}/invites"))
            .bearer_auth(&owner.token)
            .json(&json!({})),
    )
    .await?;
    let code = inv["code"].as_str().ok_or("no invite")?.to_string();
    // The DM abuser is a member (DMs need a shared community); the
    // joiner starts outside.
    let joiner = register(&http, &base, "abuse_joiner").await?;
    let dmer = register(&http, &base, "abuse_dms").await?;
    crate::scenarios::join(&http, &base, &code, &dmer).await?;
    let member_ids: Vec<String> = big.members.iter().map(|a| a.id.clone()).collect();

    let probe = Arc::new(Probe::new(3));
    let n = args.connections;
    let tokens: Vec<String> = big.members.iter().map(|a| a.token.clone()).collect();
    let targets = spread(server, n, |i| tokens[i].clone());
    let opened = open_recording(targets, &probe, |_, b| b).await?;
    eprintln!(
        "gw-abuse: {n} members connected in {:.1} s",
        opened.took.as_secs_f64()
    );
    // The abusers' own sessions (they concern the most sessions they can).
    let abuser_targets: Vec<Target> = (0..args.abuser_sessions)
        .flat_map(|_| [joiner.token.clone(), dmer.token.clone()])
        .map(|token| Target {
            addr: server.nodes[0].addr(),
            token,
        })
        .collect();
    let abusers_open = open_many(abuser_targets, Arc::new(|_: usize, _: &str| {})).await?;

    let poster = Poster::new();
    let to = (base.as_str(), big.channel.as_str(), owner.token.as_str());
    send_at(&poster, &probe, to, args.rate, args.warmup as f64, WARMUP).await;
    probe.settle(Duration::from_secs(10)).await;
    let (quiet_sent, quiet_start) =
        send_at(&poster, &probe, to, args.rate, args.duration as f64, QUIET).await;
    probe.settle(Duration::from_secs(15)).await;
    let closed_quiet = opened.closed();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let workers = vec![
        tokio::spawn(join_leave(
            http.clone(),
            base.clone(),
            Account {
                id: joiner.id.clone(),
                token: joiner.token.clone(),
            },
            (community.clone(), code.clone()),
            stop.clone(),
            tally.clone(),
        )),
        tokio::spawn(group_dms(
            http.clone(),
            base.clone(),
            Account {
                id: dmer.id.clone(),
                token: dmer.token.clone(),
            },
            member_ids,
            stop.clone(),
            tally.clone(),
        )),
    ];
    // Let the abuse get going before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failed_before = poster.failed();
    let (abuse_sent, abuse_start) =
        send_at(&poster, &probe, to, args.rate, args.duration as f64, ABUSE).await;
    probe.settle(Duration::from_secs(15)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let closed = opened.closed();
    opened.drop_all();
    abusers_open.drop_all();

    let secs = args.duration as f64;
    let ops = |t: &Tally| {
        json!({
            "joins": t.joins.load(Ordering::Relaxed),
            "leaves": t.leaves.load(Ordering::Relaxed),
            "group_dms": t.dms.load(Ordering::Relaxed),
            "refused": t.refused.load(Ordering::Relaxed),
            "rate_limited": t.limited.load(Ordering::Relaxed),
        })
    };
    let abuse_ops: Value = ops(&tally);
    let quiet_p99 = probe.histogram(QUIET).value_at_quantile(0.99);
    let abuse_p99 = probe.histogram(ABUSE).value_at_quantile(0.99);
    let ratio = abuse_p99 as f64 / quiet_p99.max(1) as f64;
    let row =
        |name: &str, bucket: usize, sent: u64, start: u64, notes: String, extra: Value| Outcome {
            name: name.into(),
            requests: probe.delivered(bucket),
            errors: (sent * n as u64).saturating_sub(probe.delivered(bucket)),
            seconds: probe.seconds_since(bucket, start, secs),
            latency_us: probe.histogram(bucket),
            server_rss_kib: server.rss_kib(),
            notes,
            extra,
        };
    Ok(vec![
        row(
            "gw-abuse quiet",
            QUIET,
            quiet_sent,
            quiet_start,
            format!(
                "{n} members (distinct users) of one community, one connection each, {} msg/s from the owner; nobody else doing anything; {closed_quiet} connections closed by the server",
                args.rate
            ),
            json!({ "sent": quiet_sent, "closed_by_server": closed_quiet }),
        ),
        row(
            "gw-abuse abused",
            ABUSE,
            abuse_sent,
            abuse_start,
            format!(
                "the same while one user joins and leaves in a loop and another creates group DMs, each with {} sessions, as fast as the rate limits let them: {abuse_ops}; p99 {:.2}× the quiet p99; {} posts failed, {} connections closed by the server in all",
                args.abuser_sessions,
                ratio,
                poster.failed() - failed_before,
                closed
            ),
            json!({ "sent": abuse_sent, "abusers": abuse_ops, "p99_ratio": ratio, "closed_by_server": closed }),
        ),
    ])
}

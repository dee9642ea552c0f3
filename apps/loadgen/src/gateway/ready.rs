//! `ready`: READY for a user in many big communities (the case:
//! 100 communities of 10,000 members). READY must stay bounded whatever the
//! size of the communities; members come in pages (`request_members`).
//!
//! Setup: the user creates the communities over REST; the other members
//! register over REST and are written into `members` straight through the
//! store (a million joins over REST would take most of an hour and measure
//! nothing of interest here). Then the user identifies `--repeat` times, one
//! connection after another: the time from sending identify to holding the
//! whole READY frame, and its size. The first identify after start is
//! reported apart (the node has loaded nothing yet). Last, one
//! `request_members` page of 1,000 from one of the communities.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use hearth_types::{CommunityId, UserId, now_ms};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::client::{Ws, dial, send_json};
use super::probe::histogram;
use crate::Args;
use crate::report::Outcome;
use crate::scenarios::{Account, client, json_of, register};
use crate::server::Server;

/// Memberships written at once (Postgres takes them in parallel; SQLite
/// queues them on its one writer).
const WRITE_PARALLEL: usize = 16;

/// Waits for the next text frame containing `needle`; its size.
async fn frame_with(ws: &mut Ws, needle: &str) -> Result<usize, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains(needle) => return Ok(t.len()),
            Some(Ok(_)) => continue,
            other => return Err(format!("no {needle}: {other:?}")),
        }
    }
}

pub async fn ready(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = client();
    let base = server.base.as_str();
    let setup = Instant::now();
    let me = register(&http, base, "ready_user").await?;
    let communities: Vec<String> = futures::stream::iter(0..args.communities)
        .map(|k| {
            let (http, token) = (http.clone(), me.token.clone());
            async move {
                let c = json_of(
                    http.post(format!("{base}/api/v1/communities"))
                        .bearer_auth(token)
                        .json(&json!({"name": format!("big {k}")})),
                )
                .await?;
                c["id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("no community id: {c}"))
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let others = args.members(10_000).saturating_sub(1);
    let accounts: Vec<Account> = futures::stream::iter(0..others)
        .map(|i| {
            let http = http.clone();
            async move { register(&http, base, &format!("ready_{i}")).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    eprintln!(
        "gw-ready: {} communities and {} accounts in {:.1} s; writing {} memberships",
        communities.len(),
        accounts.len(),
        setup.elapsed().as_secs_f64(),
        communities.len() * accounts.len()
    );
    let store = hearth_store::connect(&server.backend, WRITE_PARALLEL as u32)
        .await
        .map_err(|e| e.to_string())?;
    let cids: Vec<CommunityId> = communities
        .iter()
        .map(|c| c.parse().map_err(|_| format!("bad id {c}")))
        .collect::<Result<_, _>>()?;
    let uids: Vec<UserId> = accounts
        .iter()
        .map(|a| a.id.parse().map_err(|_| format!("bad id {}", a.id)))
        .collect::<Result<_, _>>()?;
    let pairs = cids.iter().flat_map(|c| uids.iter().map(move |u| (*c, *u)));
    let store_ref = &store;
    let failed = futures::stream::iter(pairs)
        .map(|(c, u)| async move { store_ref.add_member(c, u, now_ms()).await.is_err() })
        .buffer_unordered(WRITE_PARALLEL)
        .filter(|f| std::future::ready(*f))
        .count()
        .await;
    if failed > 0 {
        return Err(format!("{failed} memberships could not be written"));
    }
    eprintln!(
        "gw-ready: setup done in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let addr = server.nodes[0].addr();
    let rss_before = server.rss_kib();
    let mut cold = histogram();
    let mut warm = histogram();
    let mut sizes = Vec::new();
    let mut times_ms = Vec::new();
    for k in 0..args.repeat.max(1) {
        let mut ws = dial(addr, k).await?;
        let t = Instant::now();
        send_json(&mut ws, json!({"op": "identify", "d": {"token": me.token}})).await?;
        let size = frame_with(&mut ws, "\"READY\"").await?;
        let took = t.elapsed();
        sizes.push(size);
        times_ms.push(took.as_secs_f64() * 1000.0);
        let h = if k == 0 { &mut cold } else { &mut warm };
        let _ = h.record(took.as_micros() as u64);
        let _ = ws.close(None).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One page of members from a 10,000-member community (a server
    // without `request_members` closes the socket: the row says so).
    let mut page = histogram();
    let mut page_size = 0;
    let paged: Result<(), String> = async {
        let mut ws = dial(addr, 0).await?;
        send_json(&mut ws, json!({"op": "identify", "d": {"token": me.token}})).await?;
        frame_with(&mut ws, "\"READY\"").await?;
        for _ in 0..args.repeat.max(1) {
            let t = Instant::now();
            send_json(
                &mut ws,
                json!({"op": "request_members", "d": {"community_id": communities[0], "limit": 1000}}),
            )
            .await?;
            page_size = frame_with(&mut ws, "\"MEMBERS_CHUNK\"").await?;
            let _ = page.record(t.elapsed().as_micros() as u64);
        }
        let _ = ws.send(Message::Close(None)).await;
        Ok(())
    }
    .await;
    if let Err(e) = &paged {
        eprintln!("gw-ready: no member pages: {e}");
    }
    let rss_after = server.rss_kib();
    let n = communities.len();
    let m = args.members(10_000);
    let row = |name: &str, h: Histogram<u64>, count: u64, notes: String, extra: Value| Outcome {
        name: name.into(),
        requests: count,
        errors: 0,
        seconds: (h.mean() * count as f64 / 1e6).max(1e-6),
        latency_us: h,
        server_rss_kib: rss_after,
        notes,
        extra,
    };
    let max_size = sizes.iter().copied().max().unwrap_or(0);
    let pages = page.len();
    Ok(vec![
        row(
            "gw-ready cold",
            cold,
            1,
            format!(
                "first READY after start for a user in {n} communities of {m} members: {:.1} KB, {:.1} ms (nothing loaded on the node yet)",
                sizes[0] as f64 / 1000.0,
                times_ms[0]
            ),
            json!({ "bytes": sizes[0], "ms": times_ms[0], "communities": n, "members": m }),
        ),
        row(
            "gw-ready warm",
            warm,
            (sizes.len() - 1) as u64,
            format!(
                "later READYs of the same user: {:.1} KB at most; times {:?} ms; server RSS {:.1} → {:.1} MiB",
                max_size as f64 / 1000.0,
                times_ms[1..]
                    .iter()
                    .map(|t| (t * 10.0).round() / 10.0)
                    .collect::<Vec<_>>(),
                rss_before.unwrap_or(0) as f64 / 1024.0,
                rss_after.unwrap_or(0) as f64 / 1024.0
            ),
            json!({ "bytes": sizes, "ms": times_ms }),
        ),
        row(
            "gw-members page",
            page,
            pages,
            match paged {
                Ok(()) => format!(
                    "request_members of 1,000 from a {m}-member community: MEMBERS_CHUNK of {:.1} KB",
                    page_size as f64 / 1000.0
                ),
                Err(e) => format!("request_members not answered: {e}"),
            },
            json!({ "bytes": page_size }),
        ),
    ])
}

//! Accounts and communities for the gateway scenarios, made over REST the
//! way clients make them (register, create, invite, join), many at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::scenarios::{Account, join, register};

/// Requests in flight while setting up: enough to keep the server's one
/// core busy without queueing behind password hashing.
const SETUP_PARALLEL: usize = 32;

pub struct Community {
    pub channel: String,
    pub members: Vec<Account>,
}

async fn json_of(res: Result<reqwest::Response, reqwest::Error>) -> Result<Value, String> {
    let res = res.map_err(|e| e.to_string())?;
    let status = res.status();
    if !status.is_success() {
        return Err(format!("{} {status}", res.url().path()));
    }
    res.json().await.map_err(|e| e.to_string())
}

/// `count` communities owned by `owner`, each with its `general` channel and
/// `members` accounts joined through an invite. Separate communities keep
/// each channel's deliveries to its own members (no overwrites needed).
pub async fn communities(
    http: &reqwest::Client,
    base: &str,
    tag: &str,
    owner: &Account,
    count: usize,
    members: usize,
) -> Result<Vec<Community>, String> {
    let start = Instant::now();
    let made: Vec<Result<(String, String), String>> = futures::stream::iter(0..count)
        .map(|k| async move {
            let c = json_of(
                http.post(format!("{base}/api/v1/communities"))
                    .bearer_auth(&owner.token)
                    .json(&json!({"name": format!("{tag} {k}")}))
                    .send()
                    .await,
            )
            .await?;
            let cid = c["id"].as_str().ok_or("no community id")?.to_string();
            let chans = json_of(
                http.get(format!("{base}/api/v1/communities/{cid}/channels"))
                    .bearer_auth(&owner.token)
                    .send()
                    .await,
            )
            .await?;
            let channel = chans[0]["id"].as_str().ok_or("no channel")?.to_string();
            let inv = json_of(
                http.post(format!("{base}/api/v1/communities/{cid}/invites"))
                    .bearer_auth(&owner.token)
                    .json(&json!({}))
                    .send()
                    .await,
            )
            .await?;
            let code = inv["code"].as_str().ok_or("no invite")?.to_string();
            Ok((channel, code))
        })
        .buffered(8)
        .collect()
        .await;
    let made = made.into_iter().collect::<Result<Vec<_>, _>>()?;
    let done = Arc::new(AtomicU64::new(0));
    let total = count * members;
    let joined: Vec<Result<(usize, Account), String>> =
        futures::stream::iter((0..count).flat_map(|k| (0..members).map(move |j| (k, j))))
            .map(|(k, j)| {
                let (code, done) = (made[k].1.clone(), done.clone());
                async move {
                    let a = register(http, base, &format!("{tag}_{k}_{j}")).await?;
                    join(http, base, &code, &a).await?;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % 2000 == 0 {
                        eprintln!("setup: {n} of {total} accounts joined");
                    }
                    Ok((k, a))
                }
            })
            .buffer_unordered(SETUP_PARALLEL)
            .collect()
            .await;
    let mut out: Vec<Community> = made
        .into_iter()
        .map(|(channel, _)| Community {
            channel,
            members: Vec::with_capacity(members),
        })
        .collect();
    for r in joined {
        let (k, a) = r?;
        out[k].members.push(a);
    }
    if total >= 1000 {
        eprintln!(
            "setup: {count} communities, {total} accounts in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    Ok(out)
}

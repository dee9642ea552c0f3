//! The scenarios. Each drives the real API in a closed loop: every client
//! sends its next request when the previous one is answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hearth_store::{Mentions, NewMessage};
use hearth_types::{ChannelId, IdGenerator, MessageId, UserId, now_ms};
use rand::Rng;
use serde_json::{Value, json};

use crate::Args;
use crate::report::Outcome;
use crate::server::Server;

pub(crate) struct Account {
    pub id: String,
    pub token: String,
}

/// Sends a request and reads its JSON answer.
pub(crate) async fn json_of(req: reqwest::RequestBuilder) -> Result<Value, String> {
    req.send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// Joins a community through an invite code.
pub(crate) async fn join(
    http: &reqwest::Client,
    base: &str,
    code: &str,
    who: &Account,
) -> Result<(), String> {
    let st = http
        .post(format!("{base}/api/v1/invites/{code}"))
        .bearer_auth(&who.token)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .status();
    if st.is_success() {
        Ok(())
    } else {
        Err(format!("join: {st}"))
    }
}

pub(crate) async fn register(
    http: &reqwest::Client,
    base: &str,
    name: &str,
) -> Result<Account, String> {
    let res = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": name, "password": "benchmark password"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().as_u16() != 201 {
        return Err(format!("register {name}: {}", res.status()));
    }
    let v: Value = res.json().await.map_err(|e| e.to_string())?;
    Ok(Account {
        id: v["user"]["id"].as_str().unwrap_or_default().into(),
        token: v["access_token"].as_str().unwrap_or_default().into(),
    })
}

/// An owner, a community, its general channel, and `n` members.
pub(crate) async fn setup(
    http: &reqwest::Client,
    base: &str,
    tag: &str,
    n: usize,
) -> Result<(Account, String, Vec<Account>), String> {
    let owner = register(http, base, &format!("{tag}_owner")).await?;
    let c = json_of(
        http.post(format!("{base}/api/v1/communities"))
            .bearer_auth(&owner.token)
            .json(&json!({"name": tag})),
    )
    .await?;
    let cid = c["id"].as_str().ok_or("no community id")?.to_string();
    let chans = json_of(
        http.get(format!("{base}/api/v1/communities/{cid}/channels"))
            .bearer_auth(&owner.token),
    )
    .await?;
    let channel = chans[0]["id"].as_str().ok_or("no channel")?.to_string();
    let inv = json_of(
        http.post(format!("{base}/api/v1/communities/{cid}/invites"))
            .bearer_auth(&owner.token)
            .json(&json!({})),
    )
    .await?;
    let code = inv["code"].as_str().ok_or("no invite")?.to_string();
    let mut members = Vec::new();
    for i in 0..n {
        let a = register(http, base, &format!("{tag}_{i}")).await?;
        join(http, base, &code, &a).await?;
        members.push(a);
    }
    Ok((owner, channel, members))
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

/// Runs `clients` closed loops of `op` for warm-up + duration; records only
/// the measured window.
pub(crate) async fn drive<F, Fut>(
    args: &Args,
    clients: usize,
    op: F,
) -> (Histogram<u64>, u64, u64, f64)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (op, measuring, stop, errors) =
            (op.clone(), measuring.clone(), stop.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid bounds"));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = op(c, n).await;
                n += 1;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        let _ = h.record(t.elapsed().as_micros() as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            h
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(args.duration()).await;
    measuring.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"));
    for t in tasks {
        if let Ok(h) = t.await {
            let _ = all.add(h);
        }
    }
    let n = all.len();
    (all, n, errors.load(Ordering::Relaxed), secs)
}

pub async fn sends(args: &Args, server: &Server) -> Result<Outcome, String> {
    let http = client();
    let (owner, channel, members) = setup(&http, &server.base, "sends", args.senders).await?;
    if args.automod_rules > 0 {
        install_automod(&http, &server.base, &owner, &channel, args.automod_rules).await?;
    }
    let members = Arc::new(members);
    let base = server.base.clone();
    let every = args.mention_every;
    let ids: Arc<Vec<String>> = Arc::new(members.iter().map(|m| m.id.clone()).collect());
    let content = move |c: usize, i: u64| {
        let text =
            format!("message {i} from sender {c}: the quick brown fox jumps over the lazy dog");
        if every > 0 && i.is_multiple_of(every) {
            format!("<@{}> {text}", ids[(c + 1) % ids.len()])
        } else {
            text
        }
    };
    let (h, n, errors, secs) = drive(args, args.senders, move |c, i| {
        let (http, base, members, channel, content) = (
            http.clone(),
            base.clone(),
            members.clone(),
            channel.clone(),
            content.clone(),
        );
        async move {
            let res = http
                .post(format!("{base}/api/v1/channels/{channel}/messages"))
                .bearer_auth(&members[c].token)
                .json(&json!({"content": content(c, i), "nonce": format!("{c}-{i}")}))
                .send()
                .await;
            match res {
                Ok(r) if r.status().as_u16() == 201 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await;
    Ok(Outcome {
        name: "sends".into(),
        requests: n,
        errors,
        seconds: secs,
        latency_us: h,
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "{} concurrent senders, one channel, POST /channels/{{id}}/messages with a nonce{}{}",
            args.senders,
            if args.mention_every > 0 {
                format!(
                    ", every {}th message mentions another sender",
                    args.mention_every
                )
            } else {
                String::new()
            },
            if args.automod_rules > 0 {
                format!(", {} automod rules on the community", args.automod_rules)
            } else {
                String::new()
            }
        ),
        extra: Value::Null,
    })
}

/// Puts `n` blocking automod rules on the channel's community: keyword
/// lists and regexes of made-up words the load's messages never contain,
/// so every message is checked against all of them and none is refused.
async fn install_automod(
    http: &reqwest::Client,
    base: &str,
    owner: &Account,
    channel: &str,
    n: usize,
) -> Result<(), String> {
    let ch = json_of(
        http.get(format!("{base}/api/v1/channels/{channel}"))
            .bearer_auth(&owner.token),
    )
    .await?;
    let community = ch["community_id"].as_str().ok_or("no community id")?;
    let keyword_rules = n * 6 / 10;
    let rules: Vec<Value> = (0..n)
        .map(|i| {
            let trigger = if i < keyword_rules {
                let words: Vec<String> = (0..180)
                    .map(|j| match j % 3 {
                        0 => format!("zq{i}x{j}"),
                        1 => format!("*blorp{i}y{j}"),
                        _ => format!("snarf{i}z{j}*"),
                    })
                    .collect();
                json!({"type": "keywords", "words": words})
            } else {
                let patterns: Vec<String> = (0..5)
                    .map(|j| format!(r"(?i)\bqx{i}_{j}[0-9]{{3,}}\b"))
                    .collect();
                json!({"type": "regex", "patterns": patterns})
            };
            json!({"name": format!("rule {i}"), "trigger": trigger, "actions": [{"type": "block"}]})
        })
        .collect();
    let res = http
        .put(format!(
            "{base}/api/v1/communities/{community}/automod/rules"
        ))
        .bearer_auth(&owner.token)
        .json(&json!({ "rules": rules }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        let st = res.status();
        return Err(format!(
            "installing automod rules: {st} {}",
            res.text().await.unwrap_or_default()
        ));
    }
    Ok(())
}

pub async fn history(args: &Args, server: &Server) -> Result<Outcome, String> {
    let http = client();
    let (owner, channel, _) = setup(&http, &server.base, "history", 0).await?;
    let seed_start = Instant::now();
    let (first, last) = seed(args, server, &owner, &channel).await?;
    let seeded = seed_start.elapsed();
    let base = server.base.clone();
    let token = owner.token.clone();
    let (h, n, errors, secs) = drive(args, args.readers, move |_, _| {
        let (http, base, token, channel) =
            (http.clone(), base.clone(), token.clone(), channel.clone());
        async move {
            let cursor = rand::rng().random_range(first + 1..=last);
            let res = http
                .get(format!(
                    "{base}/api/v1/channels/{channel}/messages?before={cursor}&limit=50"
                ))
                .bearer_auth(&token)
                .send()
                .await;
            match res {
                Ok(r) if r.status().as_u16() == 200 => {
                    r.bytes().await.is_ok_and(|b| b.len() > 1000)
                }
                _ => false,
            }
        }
    })
    .await;
    Ok(Outcome {
        name: "history".into(),
        requests: n,
        errors,
        seconds: secs,
        latency_us: h,
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "{} readers, GET ?before=<random>&limit=50 over {} messages (seeded in {:.1} s)",
            args.readers,
            args.history_size,
            seeded.as_secs_f64()
        ),
        extra: Value::Null,
    })
}

/// Writes `history_size` messages straight into the server's database (the
/// API would take minutes); returns the first and last IDs.
async fn seed(
    args: &Args,
    server: &Server,
    owner: &Account,
    channel: &str,
) -> Result<(i64, i64), String> {
    let store = hearth_store::connect(&server.backend, 2)
        .await
        .map_err(|e| e.to_string())?;
    let node = store
        .lease_node("loadgen", now_ms(), 3_600_000)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no node id")?;
    let ids = IdGenerator::new(node);
    let author = UserId(owner.id.parse().map_err(|_| "bad id")?);
    let channel = ChannelId(channel.parse().map_err(|_| "bad channel id")?);
    let (mut first, mut last) = (0i64, 0i64);
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..args.history_size {
        let id = MessageId(ids.next().0);
        if i == 0 {
            first = id.0;
        }
        last = id.0;
        batch.push(NewMessage {
            id,
            channel_id: channel,
            author_id: author,
            content: format!("history message {i}: some ordinary chat text of a typical length, with a few words more"),
            reply_to_id: None,
            mentions: Mentions::default(),
            attachment_ids: vec![],
            nonce: None,
        });
        if batch.len() == 10_000 {
            store
                .bulk_insert_messages(&batch)
                .await
                .map_err(|e| e.to_string())?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store
            .bulk_insert_messages(&batch)
            .await
            .map_err(|e| e.to_string())?;
    }
    store
        .release_node(node, "loadgen")
        .await
        .map_err(|e| e.to_string())?;
    Ok((first, last))
}

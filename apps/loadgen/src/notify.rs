//! `notify-fanout`: an `@everyone` in a community of `--members` (10,000)
//! distinct accounts with mixed settings and presence, and how long until
//! every notification is stored, announced and every push queued.
//!
//! Setup: the members register over REST and are written into `members`
//! straight through the store (as `gw-ready` does); settings are written
//! through the store too: a tenth set the channel to `nothing`, a tenth
//! suppress `@everyone` in the community, a twentieth muted the community
//! for an hour, a tenth want every message (the rest keep the defaults).
//! `--online` members (1,000) hold an identified gateway session (online:
//! no push), and `--push-subscriptions` (1,000) of the others registered a
//! browser at the test push service (`scripts/push.sh`, which decrypts
//! and checks every push), so pushes are really sent meanwhile.
//!
//! Each of `--repeat` rounds: the owner posts `@everyone`; the time from
//! sending the request to the server's `hearth_notify_event_seconds_count`
//! moving (the consumer has stored, announced and queued everything for
//! that message), read from `/metrics` every 5 ms; the notifications and
//! pushes it made. Rounds are 3 s apart so pushes of one do not overlap
//! the next.

use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use hearth_store::{NotifySettingRecord, PushSubscriptionRecord};
use hearth_types::{CommunityId, IdGenerator, UserId, now_ms};
use serde_json::json;

use crate::Args;
use crate::gateway::client::{Target, open_many};
use crate::report::Outcome;
use crate::scenarios::{Account, client, json_of, register};
use crate::server::Server;

const WRITE_PARALLEL: usize = 16;

fn push_sink() -> String {
    std::env::var("HEARTH_TEST_PUSH").unwrap_or_else(|_| "127.0.0.1:8089".into())
}

/// Sums every series of a metric in Prometheus text (`name{…} v` or `name v`).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metric_with(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

async fn metrics(http: &reqwest::Client, base: &str) -> Result<String, String> {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())
}

pub async fn fanout(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = client();
    let base = server.base.as_str();
    let setup = Instant::now();
    let owner = register(&http, base, "notify_owner").await?;
    let c = json_of(
        http.post(format!("{base}/api/v1/communities"))
            .bearer_auth(&owner.token)
            .json(&json!({"name": "Everyone"})),
    )
    .await?;
    let community: CommunityId = c["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("no community id")?;
    let chans = json_of(
        http.get(format!("{base}/api/v1/communities/{community}/channels"))
            .bearer_auth(&owner.token),
    )
    .await?;
    let channel = chans[0]["id"].as_str().ok_or("no channel")?.to_string();
    let members: Vec<Account> = futures::stream::iter(0..args.members(10_000).saturating_sub(1))
        .map(|i| {
            let http = http.clone();
            async move { register(&http, base, &format!("notify_{i}")).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let store = hearth_store::connect(&server.backend, WRITE_PARALLEL as u32)
        .await
        .map_err(|e| e.to_string())?;
    let uids: Vec<UserId> = members
        .iter()
        .map(|a| a.id.parse().map_err(|_| format!("bad id {}", a.id)))
        .collect::<Result<_, _>>()?;
    let channel_id: i64 = channel.parse().map_err(|_| "bad channel id")?;
    let store_ref = &store;
    let failed = futures::stream::iter(uids.iter().enumerate())
        .map(|(i, u)| async move {
            if store_ref.add_member(community, *u, now_ms()).await.is_err() {
                return true;
            }
            let setting = |scope_id: i64, scope: &str| NotifySettingRecord {
                user_id: *u,
                scope_id,
                scope: scope.into(),
                ..NotifySettingRecord::default()
            };
            let row = match i % 20 {
                0 | 10 => Some(NotifySettingRecord {
                    level: Some("nothing".into()),
                    ..setting(channel_id, "channel")
                }),
                1 | 11 => Some(NotifySettingRecord {
                    suppress_everyone: Some(true),
                    ..setting(community.0, "community")
                }),
                2 => Some(NotifySettingRecord {
                    muted_until: Some(now_ms() + 3_600_000),
                    ..setting(community.0, "community")
                }),
                3 | 13 => Some(NotifySettingRecord {
                    level: Some("all".into()),
                    ..setting(community.0, "community")
                }),
                _ => None,
            };
            match row {
                Some(r) => store_ref.put_notify_setting(&r).await.is_err(),
                None => false,
            }
        })
        .buffer_unordered(WRITE_PARALLEL)
        .filter(|f| std::future::ready(*f))
        .count()
        .await;
    if failed > 0 {
        return Err(format!("{failed} members could not be written"));
    }
    // Browsers for members who will be offline (the online ones come first).
    let online = args.online.min(members.len());
    let subs = args.push_subscriptions.min(members.len() - online);
    let ids = IdGenerator::new(1000);
    for (k, u) in uids[online..online + subs].iter().enumerate() {
        let sub = json_of(
            http.post(format!("http://{}/subscriptions", push_sink()))
                .json(&json!({})),
        )
        .await
        .map_err(|e| format!("the push sink (scripts/push.sh) at {}: {e}", push_sink()))?;
        let rec = PushSubscriptionRecord {
            id: ids.next().0,
            user_id: *u,
            endpoint: sub["endpoint"].as_str().ok_or("no endpoint")?.into(),
            p256dh: sub["keys"]["p256dh"].as_str().ok_or("no key")?.into(),
            auth: sub["keys"]["auth"].as_str().ok_or("no auth")?.into(),
            created_at: now_ms() + k as i64,
        };
        store
            .put_push_subscription(&rec, 20)
            .await
            .map_err(|e| e.to_string())?;
    }
    let addr = server.nodes[0].addr();
    let targets: Vec<Target> = members[..online]
        .iter()
        .map(|a| Target {
            addr,
            token: a.token.clone(),
        })
        .collect();
    let sessions = open_many(targets, std::sync::Arc::new(|_, _| {})).await?;
    eprintln!(
        "notify-fanout: {} members, {online} online, {subs} browsers; setup {:.1} s",
        args.members(10_000),
        setup.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut took =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?;
    let (mut made, mut pushed) = (Vec::new(), Vec::new());
    let mut times_ms = Vec::new();
    for round in 0..args.repeat.max(1) {
        let before = metrics(&http, base).await?;
        let handled = metric(&before, "hearth_notify_event_seconds_count");
        let notes0 = metric(&before, "hearth_notifications_total");
        let queued0 = metric_with(&before, "hearth_push_total{outcome=\"queued\"}");
        let t = Instant::now();
        let res = http
            .post(format!("{base}/api/v1/channels/{channel}/messages"))
            .bearer_auth(&owner.token)
            .json(&json!({"content": format!("@everyone round {round}")}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status().as_u16() != 201 {
            return Err(format!("@everyone: {}", res.status()));
        }
        let after = loop {
            let m = metrics(&http, base).await?;
            if metric(&m, "hearth_notify_event_seconds_count") > handled {
                break m;
            }
            if t.elapsed() > Duration::from_secs(120) {
                return Err("the notification consumer did not handle the message in 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let elapsed = t.elapsed();
        let _ = took.record(elapsed.as_micros() as u64);
        times_ms.push((elapsed.as_secs_f64() * 10_000.0).round() / 10.0);
        made.push(metric(&after, "hearth_notifications_total") - notes0);
        pushed.push(metric_with(&after, "hearth_push_total{outcome=\"queued\"}") - queued0);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let end = metrics(&http, base).await?;
    let sent = metric_with(&end, "hearth_push_total{outcome=\"sent\"}");
    let closed = sessions.closed();
    sessions.drop_all();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let per_round = median(&mut made.clone());
    let mut rates: Vec<f64> = made
        .iter()
        .zip(&times_ms)
        .map(|(n, ms)| n / (ms / 1000.0))
        .collect();
    let rate = median(&mut rates);
    Ok(vec![Outcome {
        name: "notify-fanout".into(),
        requests: took.len(),
        errors: closed,
        seconds: (took.mean() * took.len() as f64 / 1e6).max(1e-6),
        latency_us: took,
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "@everyone to {} members ({online} online, {subs} with a browser): {per_round} notifications and {} pushes queued per round; send → all stored, announced and queued: {:?} ms; {:.0} notifications/s (median); {sent} pushes delivered to the push service in all",
            args.members(10_000),
            median(&mut pushed.clone()),
            times_ms,
            rate
        ),
        extra: json!({ "ms": times_ms, "notifications": made, "pushes_queued": pushed, "notifications_per_s": rates, "pushes_sent": sent }),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_by_name() {
        let text = "# HELP x\nhearth_notifications_total{kind=\"mention\"} 3\nhearth_notifications_total{kind=\"everyone\"} 4\nhearth_notifications_totals 9\nhearth_notify_event_seconds_count 2\n";
        assert_eq!(metric(text, "hearth_notifications_total"), 7.0);
        assert_eq!(metric(text, "hearth_notify_event_seconds_count"), 2.0);
        assert_eq!(
            metric_with(text, "hearth_notifications_total{kind=\"mention\"}"),
            3.0
        );
    }
}

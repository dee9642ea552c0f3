//! Many channels at once: `channels` (100 channels of 100 members, the shape
//! of a busy server) and `e2e` (1,000 msg/s from many senders to a modest
//! number of receivers, optionally on another node than the sends).
//!
//! Each channel is the general channel of its own community, so a member's
//! connection receives exactly its channel's messages; any other channel's
//! message arriving counts as misrouted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use super::client::{OnFrame, Target, open_many};
use super::probe::{Probe, WARMUP};
use super::{Poster, cohort, node_name};
use crate::Args;
use crate::report::Outcome;
use crate::server::Server;

struct Plan {
    name: String,
    channels: usize,
    receivers: usize,
    /// Receiver accounts in all (connections share them round-robin).
    users: usize,
    /// Sender accounts in all; 0: the owner sends to every channel.
    senders: usize,
    /// The node every receiver connects to; None: spread over all nodes.
    receiver_node: Option<usize>,
}

pub async fn channels(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let plan = Plan {
        name: "gw-channels".into(),
        channels: args.channels,
        receivers: args.connections,
        users: args.users.unwrap_or(args.connections),
        senders: 0,
        receiver_node: None,
    };
    Ok(vec![run(args, server, plan).await?])
}

pub async fn e2e(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let two = server.nodes.len() > 1;
    let plan = Plan {
        name: if two {
            "gw-e2e A→B".into()
        } else {
            "gw-e2e".into()
        },
        channels: args.channels,
        receivers: args.connections,
        users: args.users.unwrap_or(args.connections),
        senders: args.senders,
        // Sends go to node A; with two nodes every receiver is on B, so
        // every delivery crosses NATS.
        receiver_node: two.then_some(1),
    };
    Ok(vec![run(args, server, plan).await?])
}

async fn run(args: &Args, server: &Server, plan: Plan) -> Result<Outcome, String> {
    let channels = plan.channels.clamp(1, plan.receivers.max(1));
    let users_per = (plan.users / channels).max(1);
    let senders_per = plan.senders.div_ceil(channels);
    let http = crate::scenarios::client();
    let tag = plan.name.split(' ').next().unwrap_or("gw").replace('-', "");
    let owner = crate::scenarios::register(&http, &server.base, &format!("{tag}_owner")).await?;
    let made = cohort::communities(
        &http,
        &server.base,
        &tag,
        &owner,
        channels,
        senders_per + users_per,
    )
    .await?;
    let nodes = server.nodes.len();
    let node_of = |r: usize| plan.receiver_node.unwrap_or(r % nodes);
    let targets: Vec<Target> = (0..plan.receivers)
        .map(|r| {
            let members = &made[r % channels].members;
            Target {
                addr: server.nodes[node_of(r)].addr(),
                token: members[senders_per + (r / channels) % users_per]
                    .token
                    .clone(),
            }
        })
        .collect();
    let per_channel: Vec<u64> = (0..channels)
        .map(|k| (0..plan.receivers).filter(|r| r % channels == k).count() as u64)
        .collect();
    let probe = Arc::new(Probe::new(2));
    let misrouted = Arc::new(AtomicU64::new(0));
    let on_frame: OnFrame = {
        let (probe, misrouted) = (probe.clone(), misrouted.clone());
        Arc::new(move |r: usize, t: &str| {
            if let Some(st) = Probe::parse(t) {
                if st.channel != r % channels {
                    misrouted.fetch_add(1, Ordering::Relaxed);
                } else {
                    probe.record(st.bucket, st.sent_us);
                }
            }
        })
    };
    let opened = open_many(targets, on_frame).await?;
    eprintln!(
        "{}: {} connections READY in {:.1} s",
        plan.name,
        plan.receivers,
        opened.took.as_secs_f64()
    );
    let poster = Poster::new();
    let channel_ids: Vec<&str> = made.iter().map(|c| c.channel.as_str()).collect();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    let warm_until = tokio::time::Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_until + args.duration();
    let (mut m, mut sent, mut expected) = (0u64, 0u64, 0u64);
    let mut start_us = None;
    loop {
        tick.tick().await;
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        let bucket = if now < warm_until { WARMUP } else { 1 };
        if bucket == 1 && start_us.is_none() {
            start_us = Some(probe.now_us());
        }
        // Round-robin over channels, and within a channel over its senders.
        let k = (m % channels as u64) as usize;
        let sender = if senders_per == 0 {
            &owner.token
        } else {
            &made[k].members[(m as usize / channels) % senders_per].token
        };
        poster.post(
            &server.base,
            channel_ids[k],
            sender,
            probe.content(bucket, k),
        );
        if bucket == 1 {
            sent += 1;
            expected += per_channel[k];
        }
        m += 1;
    }
    probe.settle(Duration::from_secs(10)).await;
    let closed = opened.closed();
    let connect_secs = opened.took.as_secs_f64();
    opened.drop_all();
    let delivered = probe.delivered(1);
    let where_ = match plan.receiver_node {
        Some(n) => format!("sends to node A, all receivers on node {}", node_name(n)),
        None if nodes > 1 => format!("receivers spread over {nodes} nodes"),
        None => "one node".into(),
    };
    let senders = if senders_per == 0 {
        "the owner sends".to_string()
    } else {
        format!("{} senders", senders_per * channels)
    };
    Ok(Outcome {
        name: plan.name.clone(),
        requests: delivered,
        errors: expected.saturating_sub(delivered),
        seconds: probe.seconds_since(1, start_us.unwrap_or(0), args.duration as f64),
        latency_us: probe.histogram(1),
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "{} channels (one community each) × {} connections ({} accounts each), {} msg/s round-robin over the channels ({senders}), {where_}; latency from just before the POST to receipt; errors = expected deliveries missing ({} posts failed, {} misrouted, {closed} connections closed by the server)",
            channels,
            plan.receivers / channels,
            users_per,
            args.rate,
            poster.failed(),
            misrouted.load(Ordering::Relaxed),
        ),
        extra: json!({
            "channels": channels,
            "receivers": plan.receivers,
            "sent": sent,
            "expected": expected,
            "posts_failed": poster.failed(),
            "misrouted": misrouted.load(Ordering::Relaxed),
            "closed_by_server": closed,
            "connect_seconds": connect_secs,
        }),
    })
}

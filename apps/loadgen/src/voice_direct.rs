//! `voice-direct`: voice-forward's clients with no server between them, the
//! baseline that splits voice-forward's end-to-end latency into what the
//! clients themselves take (webrtc-rs's send and receive pipelines, SRTP
//! both ways, the loopback) and what the SFU adds.
//!
//! `--channels` rooms of `--members`: every member sends its microphone
//! straight to each other member over a connection of its own (one-way,
//! sendonly → recvonly), measured exactly as `voice-forward` measures
//! (`voice_common`: the same [`Mic`], [`Receiver`] and tally). With rooms of
//! two the clients' work per packet is the same as through an SFU (each
//! sends 50 packets/s and receives 50), so the two scenarios' latencies at
//! `--members 2` differ by what the SFU adds; with bigger rooms each client
//! sends one copy per listener, more than it does through an SFU. The
//! "server" in the row is this process: its CPU is the clients'.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_voice::peer;
use serde_json::json;
use webrtc::peer_connection::PeerConnection;

use crate::Args;
use crate::report::Outcome;
use crate::voice_common::{self, Mic, Receiver, Run, Tally};

/// One direction of one pair: the speaker's connection (its microphone) and
/// the listener's, and the task that speaks.
struct Link {
    pcs: [Arc<dyn PeerConnection>; 2],
    task: tokio::task::JoinHandle<()>,
}

/// Connects speaker `from` to listener `to` directly: the speaker offers a
/// sendonly microphone, the listener answers (recvonly), and the speaker's
/// microphone starts.
async fn link(from: usize, tally: Arc<Tally>) -> Result<Link, String> {
    let joined_at = Arc::new(AtomicU64::new(0));
    // Whoever listens hears someone at once: every join is timed.
    let listener = peer::client(Receiver::new(tally.clone(), joined_at.clone(), true)).await?;
    let idle = Receiver::new(tally.clone(), Arc::new(AtomicU64::new(0)), false);
    let speaker = peer::client(idle).await?;
    let mut mic = Mic::add(&speaker, from).await?;
    joined_at.store(tally.now_us(), Ordering::Relaxed);
    let offer = voice_common::offer_sdp(&speaker).await?;
    let answer = peer::answer(&listener, offer).await?;
    peer::accept(&speaker, answer).await?;
    let task = tokio::spawn(async move {
        let mut every = Mic::clock();
        loop {
            every.tick().await;
            mic.tick(&tally).await;
        }
    });
    Ok(Link {
        pcs: [speaker, listener],
        task,
    })
}

pub async fn direct(args: &Args) -> Result<Vec<Outcome>, String> {
    if args.pin {
        // Where voice-forward's clients run; CPU 0 (the server's) stays idle.
        crate::server::pin_self();
    }
    let (rooms, members) = (args.channels.max(1), args.members(99).clamp(2, 99));
    let participants = rooms * members;
    let tally = Tally::new();
    let me = std::process::id();
    let rss_before = crate::server::rss_kib(me);
    let mut links = Vec::new();
    for r in 0..rooms {
        let ids: Vec<usize> = (0..members).map(|m| r * members + m).collect();
        for &from in &ids {
            for &to in &ids {
                if from != to {
                    links.push(link(from, tally.clone()).await?);
                }
            }
        }
    }
    let window = voice_common::measure(args, &tally, me, None).await;
    let rss_after = crate::server::rss_kib(me);
    for l in &links {
        l.task.abort();
    }
    for l in &links {
        for pc in &l.pcs {
            let _ = pc.close().await;
        }
    }
    Ok(vec![voice_common::outcome(
        &tally,
        Run {
            scenario: "voice-direct",
            rooms,
            members,
            participants,
            offered_per_sec: voice_common::speakers_offer(participants, members),
            window,
            rss_before,
            rss_after,
            about: json!({
                "server": "none (clients connected directly; server_cores are the clients')",
                "peer_connections_per_participant": 2 * (members - 1),
            }),
        },
    )])
}

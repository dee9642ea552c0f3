//! `voice-forward`: audio rooms through the SFU with real WebRTC clients.
//!
//! `--channels` rooms of `--members` participants (distinct accounts),
//! each joining through the gateway (`voice_join`, `VOICE_SERVER`, an offer
//! over `voice_signal`) and publishing Opus at 50 packets/s (everyone
//! speaking). Every packet carries its send time (microseconds since the
//! run began) in its payload, which the SFU forwards untouched, so each
//! subscriber measures publisher-send → subscriber-receive latency on the
//! same clock. Reports packets forwarded per second, per server core (the
//! server's CPU time from /proc over the measured window), the added
//! latency, join time (the join op → the first remote packet) and the
//! server's RSS per participant. The measuring (receivers, publishers, CPU
//! window, the result row) is `voice_common`, shared with `voice-janus`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hearth_voice::peer;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::PeerConnection;

use crate::Args;
use crate::gateway::client::{connect, send_json};
use crate::report::Outcome;
use crate::scenarios::Account;
use crate::server::Server;
use crate::voice_common::{self, Mic, Receiver, Run, Tally};

/// One participant: its gateway socket and peer connection.
pub(crate) struct Participant {
    pub(crate) pc: Arc<dyn PeerConnection>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// A participant's peer connection (its tracks added, not yet offered)
/// and what it does in the call beyond speaking.
pub(crate) struct Call {
    pub(crate) pc: Arc<dyn PeerConnection>,
    pub(crate) mic: Mic,
    /// Set when the join op is sent (the receiver's clock for join time).
    pub(crate) joined_at: Arc<AtomicU64>,
    /// Ops sent once the SFU has answered the first offer, when the
    /// participant exists in the room (`voice-video`: `voice_state`,
    /// `voice_layer`).
    pub(crate) after_answer: Vec<Value>,
}

async fn participant(
    server: &Server,
    i: usize,
    token: &str,
    room: &str,
    tally: Arc<Tally>,
    someone_speaks: bool,
) -> Result<(Participant, Arc<Receiver>), String> {
    let joined_at = Arc::new(AtomicU64::new(0));
    let receiver = Receiver::new(tally.clone(), joined_at.clone(), someone_speaks);
    let pc = peer::client(receiver.clone()).await?;
    let mic = Mic::add(&pc, i).await?;
    let call = Call {
        pc,
        mic,
        joined_at,
        after_answer: Vec::new(),
    };
    Ok((join(server, i, token, room, tally, call).await?, receiver))
}

/// Joins `room` over the gateway (`voice_join`, then the offer over
/// `voice_signal`) as gateway client `i`, and keeps the call going in a
/// task: heartbeats, the microphone, the SFU's answers, offers and
/// candidates.
pub(crate) async fn join(
    server: &Server,
    i: usize,
    token: &str,
    room: &str,
    tally: Arc<Tally>,
    call: Call,
) -> Result<Participant, String> {
    let Call {
        pc,
        mut mic,
        joined_at,
        mut after_answer,
    } = call;
    let (mut ws, _) = connect(server.nodes[0].addr(), i, token).await?;
    joined_at.store(tally.now_us(), Ordering::Relaxed);
    send_json(
        &mut ws,
        json!({"op": "voice_join", "d": {"channel_id": room}}),
    )
    .await?;
    let sdp = voice_common::offer_sdp(&pc).await?;
    send_json(
        &mut ws,
        json!({"op": "voice_signal", "d": {"type": "offer", "sdp": sdp}}),
    )
    .await?;
    let pc2 = pc.clone();
    let task = tokio::spawn(async move {
        let (mut tx, mut rx) = ws.split();
        let mut beat = tokio::time::interval(Duration::from_secs(20));
        let mut every = Mic::clock();
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    let _ = tx.send(Message::Text(json!({"op": "heartbeat", "d": {"s": null}}).to_string().into())).await;
                }
                _ = every.tick() => mic.tick(&tally).await,
                m = rx.next() => {
                    let Some(Ok(Message::Text(t))) = m else {
                        if m.is_none() { return; }
                        continue;
                    };
                    let Ok(f) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                    if f["t"] == "VOICE_SIGNAL" {
                        apply(&pc2, &f["d"], &mut tx).await;
                        if f["d"]["type"] == "answer" {
                            for op in std::mem::take(&mut after_answer) {
                                let _ = tx.send(Message::Text(op.to_string().into())).await;
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(Participant { pc, task })
}

type Tx = futures::stream::SplitSink<crate::gateway::client::Ws, Message>;

/// The SFU's answers, offers (answered at once) and candidates.
async fn apply(pc: &Arc<dyn PeerConnection>, d: &Value, tx: &mut Tx) {
    let sdp = d["sdp"].as_str().unwrap_or_default().to_string();
    match d["type"].as_str() {
        Some("answer") => {
            let _ = peer::accept(pc, sdp).await;
        }
        Some("offer") => {
            if let Ok(answer) = peer::answer(pc, sdp).await {
                let op = json!({"op": "voice_signal", "d": {"type": "answer", "sdp": answer}});
                let _ = tx.send(Message::Text(op.to_string().into())).await;
            }
        }
        Some("candidate") => {
            if let Ok(c) = serde_json::from_value(d.clone()) {
                peer::add_candidate(pc, c).await;
            }
        }
        _ => {}
    }
}

/// A community of `accounts` distinct members (and its owner) with `rooms`
/// voice channels: the members' accounts and the channels' ids.
pub(crate) async fn rooms(
    server: &Server,
    accounts: usize,
    rooms: usize,
) -> Result<(Vec<Account>, Vec<String>), String> {
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &server.base, "voice_owner").await?;
    let mut made =
        crate::gateway::cohort::communities(&http, &server.base, "voice", &owner, 1, accounts)
            .await?;
    let community = made.pop().ok_or("no community")?;
    let cid = crate::scenarios::json_of(
        http.get(format!(
            "{}/api/v1/channels/{}",
            server.base, community.channel
        ))
        .bearer_auth(&owner.token),
    )
    .await?["community_id"]
        .as_str()
        .ok_or("no community id")?
        .to_string();
    let mut room_ids = Vec::new();
    for r in 0..rooms {
        let ch = crate::scenarios::json_of(
            http.post(format!("{}/api/v1/communities/{cid}/channels", server.base))
                .bearer_auth(&owner.token)
                .json(&json!({"name": format!("room {r}"), "kind": "voice"})),
        )
        .await?;
        room_ids.push(ch["id"].as_str().ok_or("no channel id")?.to_string());
    }
    Ok((community.members, room_ids))
}

pub async fn forward(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let (rooms, members) = (args.channels.max(1), args.members(99).clamp(2, 99));
    let (accounts, room_ids) = self::rooms(server, rooms * members, rooms).await?;
    let tally = Tally::new();
    let rss_before = server.rss_kib();
    let mut all = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        let room = &room_ids[i % rooms];
        // Rooms fill round-robin: the first `rooms` joins are alone.
        all.push(participant(server, i, &account.token, room, tally.clone(), i >= rooms).await?);
    }
    let window = voice_common::measure(args, &tally, server.nodes[0].pid, Some(&server.base)).await;
    let rss_after = server.rss_kib();
    let participants = all.len();
    // Someone who never heard anyone (their room had a speaker): how their connection went.
    for (i, (p, r)) in all.iter().enumerate() {
        if !r.heard() {
            eprintln!(
                "voice-forward: participant {i} heard nobody\n{}",
                r.diagnose(&p.pc).await
            );
        }
    }
    for (p, _) in all {
        p.task.abort();
        let _ = p.pc.close().await;
    }
    Ok(vec![voice_common::outcome(
        &tally,
        Run {
            scenario: "voice-forward",
            rooms,
            members,
            participants,
            offered_per_sec: voice_common::speakers_offer(participants, members),
            window,
            rss_before,
            rss_after,
            about: json!({"server": "hearth", "peer_connections_per_participant": 1}),
        },
    )])
}

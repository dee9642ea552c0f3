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
//! server's RSS per participant.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use hearth_voice::peer::{self, SendTrack};
use parking_lot::Mutex;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler};

use crate::Args;
use crate::gateway::client::{connect, send_json};
use crate::report::Outcome;
use crate::server::Server;

/// What every receiver adds to.
struct Tally {
    start: Instant,
    latency_us: Mutex<Histogram<u64>>,
    packets: AtomicU64,
    /// Counting starts after the warm-up.
    measuring: std::sync::atomic::AtomicBool,
    joins_us: Mutex<Histogram<u64>>,
}

impl Tally {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

struct Receiver {
    tally: Arc<Tally>,
    /// When this participant sent voice_join, and whether it heard anyone yet.
    joined_at: Arc<AtomicU64>,
    heard: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Receiver {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (tally, joined_at, heard) = (
            self.tally.clone(),
            self.joined_at.clone(),
            self.heard.clone(),
        );
        tokio::spawn(async move {
            while let Some(ev) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(p) = ev else {
                    if matches!(ev, TrackRemoteEvent::OnEnded) {
                        return;
                    }
                    continue;
                };
                let now = tally.now_us();
                if !heard.swap(true, Ordering::Relaxed) {
                    let _ = tally
                        .joins_us
                        .lock()
                        .record(now.saturating_sub(joined_at.load(Ordering::Relaxed)).max(1));
                }
                if !tally.measuring.load(Ordering::Relaxed) {
                    continue;
                }
                tally.packets.fetch_add(1, Ordering::Relaxed);
                if let Some(sent) = p.payload.get(1..9).and_then(|b| b.try_into().ok()) {
                    let sent = u64::from_be_bytes(sent);
                    let _ = tally
                        .latency_us
                        .lock()
                        .record(now.saturating_sub(sent).max(1));
                }
            }
        });
    }
}

/// One participant: its gateway socket and peer connection.
struct Participant {
    pc: Arc<dyn PeerConnection>,
    task: tokio::task::JoinHandle<()>,
}

async fn participant(
    server: &Server,
    i: usize,
    token: &str,
    room: &str,
    tally: Arc<Tally>,
) -> Result<Participant, String> {
    let (mut ws, _) = connect(server.nodes[0].addr(), i, token).await?;
    let joined_at = Arc::new(AtomicU64::new(0));
    let pc = peer::client(Arc::new(Receiver {
        tally: tally.clone(),
        joined_at: joined_at.clone(),
        heard: Default::default(),
    }))
    .await?;
    let mic = SendTrack::add(
        &pc,
        RtpCodecKind::Audio,
        peer::opus(),
        &[],
        &format!("mic{i}"),
    )
    .await?;
    let (track, ssrc, sender) = (mic.track.clone(), mic.encodings[0].1, mic.sender.clone());
    joined_at.store(tally.now_us(), Ordering::Relaxed);
    send_json(
        &mut ws,
        json!({"op": "voice_join", "d": {"channel_id": room}}),
    )
    .await?;
    let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    // Loopback host candidates are there at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sdp = pc.local_description().await.ok_or("no local offer")?.sdp;
    send_json(
        &mut ws,
        json!({"op": "voice_signal", "d": {"type": "offer", "sdp": sdp}}),
    )
    .await?;
    let pc2 = pc.clone();
    let task = tokio::spawn(async move {
        let (mut tx, mut rx) = ws.split();
        let mut beat = tokio::time::interval(Duration::from_secs(20));
        let mut every = tokio::time::interval(Duration::from_millis(20));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let (mut seq, mut n) = (rand::random::<u16>(), 0u32);
        let mut pt = None;
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    let _ = tx.send(Message::Text(json!({"op": "heartbeat", "d": {"s": null}}).to_string().into())).await;
                }
                _ = every.tick() => {
                    if pt.is_none() {
                        pt = sender
                            .get_parameters()
                            .await
                            .ok()
                            .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type));
                    }
                    let Some(pt) = pt else { continue };
                    seq = seq.wrapping_add(1);
                    n = n.wrapping_add(1);
                    // A TOC byte, then the send time, then filler to ~60 bytes.
                    let mut payload = Vec::with_capacity(60);
                    payload.push(0xfc);
                    payload.extend_from_slice(&tally.now_us().to_be_bytes());
                    payload.resize(60, 0xfe);
                    let header = rtp::header::Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: seq,
                        timestamp: n.wrapping_mul(960),
                        ssrc,
                        ..Default::default()
                    };
                    let _ = track.write_rtp(rtp::Packet { header, payload: Bytes::from(payload) }).await;
                }
                m = rx.next() => {
                    let Some(Ok(Message::Text(t))) = m else {
                        if m.is_none() { return; }
                        continue;
                    };
                    let Ok(f) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                    if f["t"] == "VOICE_SIGNAL" {
                        apply(&pc2, &f["d"], &mut tx).await;
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

/// The server process's user + system CPU time, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((utime + stime) / 100.0)
}

pub async fn forward(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = crate::scenarios::client();
    let owner = crate::scenarios::register(&http, &server.base, "voice_owner").await?;
    let (rooms, members) = (args.channels.max(1), args.members.clamp(2, 99));
    let mut made = crate::gateway::cohort::communities(
        &http,
        &server.base,
        "voice",
        &owner,
        1,
        rooms * members,
    )
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
    let tally = Arc::new(Tally {
        start: Instant::now(),
        latency_us: Mutex::new(crate::gateway::probe::histogram()),
        packets: AtomicU64::new(0),
        measuring: Default::default(),
        joins_us: Mutex::new(crate::gateway::probe::histogram()),
    });
    let rss_before = server.rss_kib();
    let mut all = Vec::new();
    for (i, account) in community.members.iter().enumerate() {
        let room = &room_ids[i % rooms];
        all.push(participant(server, i, &account.token, room, tally.clone()).await?);
    }
    tokio::time::sleep(Duration::from_secs(args.warmup.max(3))).await;
    let pid = server.nodes[0].pid;
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    tally.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    tally.measuring.store(false, Ordering::Relaxed);
    let (cpu1, seconds) = (cpu_seconds(pid), t0.elapsed().as_secs_f64());
    let rss_after = server.rss_kib();
    let forwarded = tally.packets.load(Ordering::Relaxed);
    let cores = match (cpu0, cpu1) {
        (Some(a), Some(b)) => (b - a) / seconds,
        _ => f64::NAN,
    };
    let per_sec = forwarded as f64 / seconds;
    let participants = all.len();
    for p in all {
        p.task.abort();
        let _ = p.pc.close().await;
    }
    let joins = tally.joins_us.lock().clone();
    let rss_per = match (rss_before, rss_after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / participants as f64),
        _ => None,
    };
    let offered = (participants * (members - 1) * 50) as f64;
    Ok(vec![Outcome {
        name: format!("voice-forward {rooms}x{members}"),
        requests: forwarded,
        errors: 0,
        seconds,
        latency_us: tally.latency_us.lock().clone(),
        server_rss_kib: rss_after,
        notes: format!(
            "{per_sec:.0} packets/s forwarded of {offered:.0} offered; server {cores:.2} cores → {:.0} packets/s per core; join → first remote packet p50 {:.1} ms p99 {:.1} ms; RSS {} KiB per participant",
            per_sec / cores,
            joins.value_at_quantile(0.5) as f64 / 1000.0,
            joins.value_at_quantile(0.99) as f64 / 1000.0,
            rss_per.map_or("?".into(), |r| format!("{r:.0}")),
        ),
        extra: json!({
            "rooms": rooms,
            "members": members,
            "forwarded_per_sec": per_sec,
            "offered_per_sec": offered,
            "server_cores": cores,
            "per_core": per_sec / cores,
            "join_p50_ms": joins.value_at_quantile(0.5) as f64 / 1000.0,
            "join_p99_ms": joins.value_at_quantile(0.99) as f64 / 1000.0,
            "rss_kib_per_participant": rss_per,
        }),
    }])
}

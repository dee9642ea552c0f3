//! What the voice scenarios share, so that `voice-forward` (Hearth's SFU),
//! `voice-janus` (Janus's VideoRoom) and `voice-video` measure exactly the
//! same way: the receivers and their tally, the publisher's 50 packets/s,
//! the server's CPU time over the measured window, and the one result row.
//!
//! Every packet carries its send time (microseconds since the run began) in
//! its payload, which an SFU forwards untouched, so each subscriber measures
//! publisher-send → subscriber-receive latency on the same clock: [`Mic`]'s
//! in bytes 1..9, others where the scenario's [`Reader`] finds them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hearth_voice::peer::{self, SendTrack};
use hearth_voice::{DELAY_BOUNDS_US, DelayHistogram};
use parking_lot::Mutex;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{Value, json};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCPeerConnectionState, RTCSignalingState,
};

use crate::Args;
use crate::report::Outcome;

/// Packets a publisher sends per second (20 ms Opus frames).
pub const PACKETS_PER_SEC: usize = 50;

/// What every receiver adds to.
pub struct Tally {
    start: Instant,
    latency_us: Mutex<Histogram<u64>>,
    packets: AtomicU64,
    /// Packets the publishers ([`Mic`]) handed to their peer connections in the window,
    /// and those it refused: with the server's own count, where a shortfall happens.
    sent: AtomicU64,
    send_errors: AtomicU64,
    /// Counting starts after the warm-up.
    measuring: AtomicBool,
    joins_us: Mutex<Histogram<u64>>,
}

impl Tally {
    pub fn new() -> Arc<Tally> {
        Arc::new(Tally {
            start: Instant::now(),
            latency_us: Mutex::new(crate::gateway::probe::histogram()),
            packets: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            joins_us: Mutex::new(crate::gateway::probe::histogram()),
        })
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

/// Makes `pc`'s offer and returns its SDP once the host candidates are in
/// it (on loopback they are there at once; 100 ms covers them).
pub async fn offer_sdp(pc: &Arc<dyn PeerConnection>) -> Result<String, String> {
    let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(pc.local_description().await.ok_or("no local offer")?.sdp)
}

/// The send time [`Mic`] puts in a packet's payload (bytes 1..9).
pub fn mic_stamp(payload: &[u8]) -> Option<u64> {
    payload
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

/// A scenario's own reading of received packets, for payloads other than
/// [`Mic`]'s (`voice-video`: a camera's layers and send times).
pub trait Reader: Send + Sync {
    /// One packet of the remote track `track_id` (its msid track id),
    /// received at `now_us`, `measuring` when inside the measured window:
    /// its send time, if the payload carries one.
    fn packet(&self, track_id: &str, payload: &[u8], now_us: u64, measuring: bool) -> Option<u64>;
}

/// One participant's receiving side: every remote track's packets go to the
/// tally, and the first one also records the join time, for a participant
/// that joined a room where someone already spoke. The first member of a
/// room hears nobody until the next one joins (a room's members join ten
/// joins apart), so its wait measures the join schedule, not the server:
/// counting it made the p99 ~1.4 s for Hearth and Janus alike.
pub struct Receiver {
    tally: Arc<Tally>,
    /// When this participant asked to join, and whether it heard anyone yet.
    joined_at: Arc<AtomicU64>,
    heard: Arc<AtomicBool>,
    /// How payloads carry their send time: [`mic_stamp`] when `None`.
    reader: Option<Arc<dyn Reader>>,
    /// The connection's life, for [`Receiver::diagnose`]: state changes and remote tracks.
    story: Mutex<Vec<String>>,
}

impl Receiver {
    pub fn new(
        tally: Arc<Tally>,
        joined_at: Arc<AtomicU64>,
        someone_speaks: bool,
    ) -> Arc<Receiver> {
        Receiver::reading(tally, joined_at, someone_speaks, None)
    }

    /// [`Receiver::new`] with the scenario's own [`Reader`].
    pub fn reading(
        tally: Arc<Tally>,
        joined_at: Arc<AtomicU64>,
        someone_speaks: bool,
        reader: Option<Arc<dyn Reader>>,
    ) -> Arc<Receiver> {
        Arc::new(Receiver {
            tally,
            joined_at,
            // Nothing to time for the first in a room.
            heard: Arc::new(AtomicBool::new(!someone_speaks)),
            reader,
            story: Mutex::new(Vec::new()),
        })
    }

    /// Whether this participant heard anyone (true from the start for the first in a room).
    pub fn heard(&self) -> bool {
        self.heard.load(Ordering::Relaxed)
    }

    fn note(&self, what: String) {
        let at = self.tally.now_us() as f64 / 1000.0;
        self.story.lock().push(format!("{at:.0} ms {what}"));
    }

    /// For a participant that never heard anyone: its connection's story, its
    /// states now, and the m-sections of both descriptions (where a lost
    /// subscription shows). Printed by the scenario, on stderr.
    pub async fn diagnose(&self, pc: &Arc<dyn PeerConnection>) -> String {
        let sections = |sdp: Option<String>| {
            sdp.unwrap_or_default()
                .lines()
                .filter(|l| {
                    l.starts_with("m=")
                        || l.starts_with("a=mid")
                        || l.starts_with("a=send")
                        || l.starts_with("a=recv")
                        || l.starts_with("a=inactive")
                        || l.starts_with("a=ssrc")
                        || l.starts_with("a=msid")
                        || l.starts_with("a=candidate")
                })
                .collect::<Vec<_>>()
                .join(" | ")
        };
        // Whether datagrams reach it at all: the transport's count, and each inbound stream's.
        let stats = pc
            .get_stats(Instant::now(), webrtc::peer_connection::StatsSelector::None)
            .await;
        let transport = stats.transport().map_or("none".to_string(), |t| {
            format!(
                "{} packets / {} bytes received",
                t.packets_received, t.bytes_received
            )
        });
        let inbound: Vec<String> = stats
            .inbound_rtp_streams()
            .map(|s| {
                let r = &s.received_rtp_stream_stats;
                format!(
                    "ssrc {} {} packets",
                    r.rtp_stream_stats.ssrc, r.packets_received
                )
            })
            .collect();
        let local = sections(pc.local_description().await.map(|d| d.sdp));
        let remote = sections(pc.remote_description().await.map(|d| d.sdp));
        let story = self.story.lock().join("; ");
        format!(
            "story: {story}\ntransport: {transport}; inbound RTP: [{}]\nlocal: {local}\nremote: {remote}",
            inbound.join(", "),
        )
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Receiver {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.note(format!("connection {state:?}"));
    }

    async fn on_signaling_state_change(&self, state: RTCSignalingState) {
        self.note(format!("signaling {state:?}"));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.note(format!("track ssrc {:?}", track.ssrcs().await));
        let (tally, joined_at, heard, reader) = (
            self.tally.clone(),
            self.joined_at.clone(),
            self.heard.clone(),
            self.reader.clone(),
        );
        tokio::spawn(async move {
            let id = match reader {
                Some(_) => track.track_id().await,
                None => String::new(),
            };
            while let Some(ev) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(p) = ev else {
                    if matches!(ev, TrackRemoteEvent::OnEnded) {
                        return;
                    }
                    continue;
                };
                let now = tally.now_us();
                // A participant's first remote packet, whichever track it is on.
                if !heard.swap(true, Ordering::Relaxed) {
                    let _ = tally
                        .joins_us
                        .lock()
                        .record(now.saturating_sub(joined_at.load(Ordering::Relaxed)).max(1));
                }
                let measuring = tally.measuring.load(Ordering::Relaxed);
                let sent = match &reader {
                    Some(r) => r.packet(&id, &p.payload, now, measuring),
                    None => mic_stamp(&p.payload),
                };
                if !measuring {
                    continue;
                }
                tally.packets.fetch_add(1, Ordering::Relaxed);
                if let Some(sent) = sent {
                    let _ = tally
                        .latency_us
                        .lock()
                        .record(now.saturating_sub(sent).max(1));
                }
            }
        });
    }
}

/// A participant's microphone: one Opus track, written one packet per tick
/// of [`Mic::clock`].
pub struct Mic {
    track: Arc<webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP>,
    sender: Arc<dyn webrtc::rtp_transceiver::RtpSender>,
    ssrc: u32,
    seq: u16,
    n: u32,
    /// The negotiated payload type, once there is one.
    pt: Option<u8>,
}

impl Mic {
    /// Adds a `sendonly` Opus track to `pc`.
    pub async fn add(pc: &Arc<dyn PeerConnection>, i: usize) -> Result<Mic, String> {
        let mic = SendTrack::add(
            pc,
            RtpCodecKind::Audio,
            peer::opus(),
            &[],
            &format!("mic{i}"),
        )
        .await?;
        Ok(Mic {
            track: mic.track.clone(),
            sender: mic.sender.clone(),
            ssrc: mic.encodings[0].1,
            seq: rand::random(),
            n: 0,
            pt: None,
        })
    }

    /// A 20 ms interval that catches up after a stall (as an encoder would).
    pub fn clock() -> tokio::time::Interval {
        let mut every = tokio::time::interval(Duration::from_secs(1) / PACKETS_PER_SEC as u32);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        every
    }

    /// Sends one packet stamped with the tally's clock (nothing until the
    /// payload type is negotiated).
    pub async fn tick(&mut self, tally: &Tally) {
        if self.pt.is_none() {
            self.pt = self
                .sender
                .get_parameters()
                .await
                .ok()
                .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type));
        }
        let Some(pt) = self.pt else { return };
        self.seq = self.seq.wrapping_add(1);
        self.n = self.n.wrapping_add(1);
        // A TOC byte, then the send time, then filler to ~60 bytes.
        let mut payload = Vec::with_capacity(60);
        payload.push(0xfc);
        payload.extend_from_slice(&tally.now_us().to_be_bytes());
        payload.resize(60, 0xfe);
        let header = rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: self.seq,
            timestamp: self.n.wrapping_mul(960),
            ssrc: self.ssrc,
            ..Default::default()
        };
        let sent = self
            .track
            .write_rtp(rtp::Packet {
                header,
                payload: Bytes::from(payload),
            })
            .await;
        if tally.measuring.load(Ordering::Relaxed) {
            let n = if sent.is_ok() {
                &tally.sent
            } else {
                &tally.send_errors
            };
            n.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A process's user + system CPU time, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((utime + stime) / 100.0)
}

/// The measured window: its length, the server's CPU cores over it, and (Hearth only)
/// what the server's `/metrics` counted over it.
pub struct Window {
    pub seconds: f64,
    pub cores: f64,
    /// This process's CPU (the clients'), in cores: the other half of the latency.
    pub client_cores: f64,
    pub server: Option<Scrape>,
}

/// What Hearth's `/metrics` say of its SFU (differences over the window).
pub struct Scrape {
    /// The SFU's own delay per forwarded datagram (`hearth_voice_forward_delay_seconds`).
    pub delay: DelayHistogram,
    /// Packets it wrote to subscribers (`hearth_voice_packets_forwarded_total`).
    pub forwarded: f64,
    /// Packets it did not write (`hearth_voice_packets_dropped_total`).
    pub dropped: f64,
}

/// Once everyone has joined: the warm-up (at least 3 s), then `--duration`
/// seconds in which receivers count packets and latency while the server's
/// CPU time (process `pid`, every thread) is read at both ends. With a
/// `metrics` base URL (Hearth), its `/metrics` are read at both ends too.
pub async fn measure(args: &Args, tally: &Tally, pid: u32, metrics: Option<&str>) -> Window {
    tokio::time::sleep(Duration::from_secs(args.warmup.max(3))).await;
    let http = crate::scenarios::client();
    let before = match metrics {
        Some(base) => scrape(&http, base).await,
        None => None,
    };
    let me = std::process::id();
    let (cpu0, mine0, t0) = (cpu_seconds(pid), cpu_seconds(me), Instant::now());
    tally.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    tally.measuring.store(false, Ordering::Relaxed);
    let (cpu1, mine1, seconds) = (
        cpu_seconds(pid),
        cpu_seconds(me),
        t0.elapsed().as_secs_f64(),
    );
    let after = match metrics {
        Some(base) => scrape(&http, base).await,
        None => None,
    };
    let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (b - a) / seconds,
        _ => f64::NAN,
    };
    let server = match (before, after) {
        (Some(a), Some(b)) => Some(Scrape {
            delay: b.delay.since(&a.delay),
            forwarded: b.forwarded - a.forwarded,
            dropped: b.dropped - a.dropped,
        }),
        _ => None,
    };
    Window {
        seconds,
        cores: cores(cpu0, cpu1),
        client_cores: cores(mine0, mine1),
        server,
    }
}

/// Hearth's SFU figures from its `/metrics`.
async fn scrape(http: &reqwest::Client, base: &str) -> Option<Scrape> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let counter = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    Some(Scrape {
        delay: parse_delay(&text)?,
        forwarded: counter("hearth_voice_packets_forwarded_total")?,
        dropped: counter("hearth_voice_packets_dropped_total")?,
    })
}

/// The delay histogram in Prometheus text: its buckets in `DELAY_BOUNDS_US` order, then
/// `+Inf` (the total), and the sum.
fn parse_delay(text: &str) -> Option<DelayHistogram> {
    const NAME: &str = "hearth_voice_forward_delay_seconds";
    let value = |line: &str| line.rsplit_once(' ')?.1.parse::<f64>().ok();
    let mut cumulative = vec![None; DELAY_BOUNDS_US.len() + 1];
    let mut sum_us = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(NAME) else {
            continue;
        };
        if let Some(le) = rest
            .strip_prefix("_bucket{le=\"")
            .and_then(|r| r.split_once('"'))
            .map(|(le, _)| le)
        {
            let i = if le == "+Inf" {
                Some(DELAY_BOUNDS_US.len())
            } else {
                let us = (le.parse::<f64>().ok()? * 1e6).round() as u64;
                DELAY_BOUNDS_US.iter().position(|&b| b == us)
            };
            if let Some(i) = i {
                cumulative[i] = value(line).map(|v| v as u64);
            }
        } else if rest.starts_with("_sum ") {
            sum_us = value(line).map(|v| (v * 1e6).round() as u64);
        }
    }
    Some(DelayHistogram {
        cumulative: cumulative.into_iter().collect::<Option<Vec<u64>>>()?,
        sum_us: sum_us?,
    })
}

/// What full rooms of `members` speakers offer: everyone hears everyone else.
pub fn speakers_offer(participants: usize, members: usize) -> f64 {
    (participants * (members - 1) * PACKETS_PER_SEC) as f64
}

/// What one run measured, and what it ran against.
pub struct Run<'a> {
    /// The scenario's name in the table (`voice-forward`, `voice-janus`).
    pub scenario: &'a str,
    pub rooms: usize,
    pub members: usize,
    pub participants: usize,
    /// Packets a second the server should forward when it drops none.
    pub offered_per_sec: f64,
    pub window: Window,
    /// The server's RSS before anyone joined and at the end of the window.
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    /// Scenario-specific facts for the JSON (`server`, peer connections per
    /// participant, ...), merged into `extra`.
    pub about: Value,
}

/// The result row, the same for every server.
pub fn outcome(tally: &Tally, run: Run<'_>) -> Outcome {
    let Run {
        scenario,
        rooms,
        members,
        participants,
        offered_per_sec: offered,
        window:
            Window {
                seconds,
                cores,
                client_cores,
                server,
            },
        rss_before,
        rss_after,
        about,
    } = run;
    let forwarded = tally.packets.load(Ordering::Relaxed);
    let per_sec = forwarded as f64 / seconds;
    let joins = tally.joins_us.lock().clone();
    let rss_per = match (rss_before, rss_after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / participants as f64),
        _ => None,
    };
    let mut extra = json!({
        "rooms": rooms,
        "members": members,
        "forwarded_per_sec": per_sec,
        "offered_per_sec": offered,
        "server_cores": cores,
        "per_core": per_sec / cores,
        "join_p50_ms": joins.value_at_quantile(0.5) as f64 / 1000.0,
        "join_p99_ms": joins.value_at_quantile(0.99) as f64 / 1000.0,
        // Joins timed: those into a room where someone already spoke.
        "joined": joins.len(),
        "joins_timed_of": participants - rooms,
        "rss_kib_per_participant": rss_per,
    });
    if let Some(e) = extra.as_object_mut() {
        // Where packets went: what the publishers sent (each to `members - 1` in an audio
        // room), what the server wrote, what the receivers counted.
        e.insert("client_cores".into(), json!(client_cores));
        e.insert(
            "published_per_sec".into(),
            json!(tally.sent.load(Ordering::Relaxed) as f64 / seconds),
        );
        e.insert(
            "publish_errors".into(),
            json!(tally.send_errors.load(Ordering::Relaxed)),
        );
        if let Some(s) = &server {
            // The SFU's own share: kernel arrival → last copy sent (Hearth's histogram).
            let ms = |q: f64| s.delay.quantile(q).map(|t| t.as_secs_f64() * 1000.0);
            e.insert("sfu_delay_p50_ms".into(), json!(ms(0.5)));
            e.insert("sfu_delay_p99_ms".into(), json!(ms(0.99)));
            e.insert("sfu_delay_p999_ms".into(), json!(ms(0.999)));
            e.insert("sfu_delay_count".into(), json!(s.delay.count()));
            e.insert("sfu_forwarded_per_sec".into(), json!(s.forwarded / seconds));
            e.insert("sfu_dropped".into(), json!(s.dropped));
        }
    }
    if let (Some(e), Some(a)) = (extra.as_object_mut(), about.as_object()) {
        e.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut out = Outcome {
        name: format!("{scenario} {rooms}x{members}"),
        requests: forwarded,
        errors: 0,
        seconds,
        latency_us: tally.latency_us.lock().clone(),
        server_rss_kib: rss_after,
        notes: format!(
            "{per_sec:.0} packets/s forwarded of {offered:.0} offered; server {cores:.2} cores → {:.0} packets/s per core; join → first remote packet p50 {:.1} ms p99 {:.1} ms ({} of the {} joining a room with a speaker heard someone); RSS {} KiB per participant",
            per_sec / cores,
            joins.value_at_quantile(0.5) as f64 / 1000.0,
            joins.value_at_quantile(0.99) as f64 / 1000.0,
            joins.len(),
            participants - rooms,
            rss_per.map_or("?".into(), |r| format!("{r:.0}")),
        ),
        extra,
    };
    if let Some(s) = &server {
        let ms = |q: f64| {
            s.delay
                .quantile(q)
                .map_or(f64::NAN, |t| t.as_secs_f64() * 1000.0)
        };
        out.notes += &format!(
            "; the SFU's own delay (arrival → copies sent) p50 {:.2} ms p99 {:.2} ms over {} datagrams; the SFU wrote {:.0} packets/s, dropped {}",
            ms(0.5),
            ms(0.99),
            s.delay.count(),
            s.forwarded / seconds,
            s.dropped
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_histogram_is_read_back_from_prometheus_text() {
        let mut text = String::from("# HELP hearth_voice_forward_delay_seconds x\n");
        for (i, b) in DELAY_BOUNDS_US.iter().enumerate() {
            let le = *b as f64 / 1e6;
            text += &format!(
                "hearth_voice_forward_delay_seconds_bucket{{le=\"{le}\"}} {}\n",
                10 * (i + 1)
            );
        }
        text += &format!(
            "hearth_voice_forward_delay_seconds_bucket{{le=\"+Inf\"}} {}\n",
            10 * (DELAY_BOUNDS_US.len() + 1)
        );
        text += "hearth_voice_forward_delay_seconds_sum 0.5\nhearth_voice_forward_delay_seconds_count 230\n";
        let h = parse_delay(&text).expect("parsed");
        assert_eq!(h.cumulative.len(), DELAY_BOUNDS_US.len() + 1);
        assert_eq!(h.cumulative[0], 10);
        assert_eq!(h.count(), 230);
        assert_eq!(h.sum_us, 500_000);
        // A missing bucket is no histogram, not a wrong one.
        let cut: String = text
            .lines()
            .filter(|l| !l.contains("le=\"0.001\""))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse_delay(&cut).is_none());
        assert!(parse_delay("up 1\n").is_none());
    }
}

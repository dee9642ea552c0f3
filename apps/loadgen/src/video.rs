//! `voice-video`: one video room with simulcast through the SFU, with real
//! WebRTC clients, measured as `voice-forward` measures its audio rooms.
//!
//! `--members` participants (distinct accounts, default 8) join one voice
//! channel through the gateway, one after another, exactly as in
//! `voice-forward` (`voice.rs`: `voice_join`, the offer over `voice_signal`).
//! Each publishes Opus at 50 packets/s ([`Mic`]) and a VP8 camera in three
//! simulcast encodings, rids `q`, `h` and `f` (low to high, the rid and mid
//! header extensions on every packet, as a browser sends them), at 30
//! frames/s:
//!
//! | rid | picture  | packets/frame | bytes | packets/s | bits/s    |
//! |-----|----------|---------------|-------|-----------|-----------|
//! | q   | 320×180  | 1             | 600   | 30        | 144 k     |
//! | h   | 640×360  | 2             | 1,050 | 60        | 504 k     |
//! | f   | 1280×720 | 6             | 1,050 | 180       | 1.51 M    |
//!
//! (the SFU's default layer bitrates are 150 k, 500 k and 1.5 M). Payloads
//! are VP8 as the SFU reads them (RFC 7741 descriptor, S on a frame's first
//! packet; the frame tag's P bit, and a keyframe's start code and size);
//! the last packet of a frame has the marker bit. A layer's first frame is
//! a keyframe, and after that only a frame the SFU asks for (PLI or FIR for
//! that layer's SSRC), as a browser's encoder behaves; the report counts
//! both.
//!
//! What each participant shows is what a call page in speaker view asks
//! for with `voice_layer` once the SFU has answered its offer: the first
//! [`SPOTLIGHTS`] participants show the next participant in spotlight
//! (`high`) and everyone else as thumbnails (`low`); the others show
//! everyone as thumbnails. Every packet ends with its layer and its send
//! time (the last 9 bytes), so subscribers count packets per layer and per
//! view (spotlight, thumbnail): the proof that the SFU forwards the layer
//! asked for. Latency is kept for audio and video apart and together; join
//! time as `voice-forward` (join op → first remote packet), plus join op →
//! first video packet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use hearth_voice::peer::{self, SendTrack};
use parking_lot::Mutex;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use serde_json::{Value, json};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

use crate::Args;
use crate::report::Outcome;
use crate::server::Server;
use crate::voice::{self, Call};
use crate::voice_common::{self, Mic, PACKETS_PER_SEC, Receiver, Run, Tally};

/// Camera frames per second (every layer).
const FPS: u32 = 30;

/// One simulcast encoding of the camera.
struct Encoding {
    rid: &'static str,
    width: u16,
    height: u16,
    packets_per_frame: usize,
    /// RTP payload bytes of each packet.
    bytes: usize,
}

/// Low to high, as a browser lists `sendEncodings`.
const ENCODINGS: [Encoding; 3] = [
    Encoding {
        rid: "q",
        width: 320,
        height: 180,
        packets_per_frame: 1,
        bytes: 600,
    },
    Encoding {
        rid: "h",
        width: 640,
        height: 360,
        packets_per_frame: 2,
        bytes: 1_050,
    },
    Encoding {
        rid: "f",
        width: 1280,
        height: 720,
        packets_per_frame: 6,
        bytes: 1_050,
    },
];

/// Participants that show someone in spotlight (the rest show thumbnails only).
const SPOTLIGHTS: usize = 2;

/// A packet's layer and send time, at the end of its payload.
const TRAILER: usize = 9;

fn packets_per_sec(layer: usize) -> usize {
    ENCODINGS[layer].packets_per_frame * FPS as usize
}

/// What the video receivers count, on top of the [`Tally`].
struct VideoTally {
    /// Packets in the window, per view (0 spotlight, 1 thumbnail) and layer.
    layers: [[AtomicU64; 3]; 2],
    audio_us: Mutex<Histogram<u64>>,
    video_us: Mutex<Histogram<u64>>,
    /// Join op → first video packet.
    first_video_us: Mutex<Histogram<u64>>,
}

impl VideoTally {
    fn new() -> Arc<VideoTally> {
        Arc::new(VideoTally {
            layers: Default::default(),
            audio_us: Mutex::new(crate::gateway::probe::histogram()),
            video_us: Mutex::new(crate::gateway::probe::histogram()),
            first_video_us: Mutex::new(crate::gateway::probe::histogram()),
        })
    }

    fn layer_counts(&self, view: usize) -> [u64; 3] {
        std::array::from_fn(|l| self.layers[view][l].load(Ordering::Relaxed))
    }
}

/// One participant's reading of what it receives: which publisher it
/// shows in spotlight, and the video tally.
struct View {
    /// The publisher shown in spotlight (its participant id), if any.
    spotlight: Option<String>,
    joined_at: Arc<AtomicU64>,
    /// Whether it saw a video packet yet (set from the start for the first
    /// to join: nobody shows video to it until the next one joins).
    saw_video: AtomicBool,
    stats: Arc<VideoTally>,
}

impl voice_common::Reader for View {
    fn packet(&self, track_id: &str, payload: &[u8], now_us: u64, measuring: bool) -> Option<u64> {
        // The SFU's track ids: `<publisher>-<audio|camera|screen>-<n>`.
        let mut parts = track_id.split('-');
        let (publisher, kind) = (parts.next()?, parts.next()?);
        if kind == "audio" {
            let sent = voice_common::mic_stamp(payload)?;
            if measuring {
                let _ = self
                    .stats
                    .audio_us
                    .lock()
                    .record(now_us.saturating_sub(sent).max(1));
            }
            return Some(sent);
        }
        let (&layer, stamp) = payload[payload.len().checked_sub(TRAILER)?..].split_first()?;
        let sent = u64::from_be_bytes(stamp.try_into().ok()?);
        if !self.saw_video.swap(true, Ordering::Relaxed) {
            let joined = self.joined_at.load(Ordering::Relaxed);
            let _ = self
                .stats
                .first_video_us
                .lock()
                .record(now_us.saturating_sub(joined).max(1));
        }
        if measuring {
            let view = usize::from(self.spotlight.as_deref() != Some(publisher));
            self.stats.layers[view][usize::from(layer).min(2)].fetch_add(1, Ordering::Relaxed);
            let _ = self
                .stats
                .video_us
                .lock()
                .record(now_us.saturating_sub(sent).max(1));
        }
        Some(sent)
    }
}

/// What the camera's packets must carry once negotiated.
struct Negotiated {
    payload_type: u8,
    mid_ext: u8,
    mid: Bytes,
    rid_ext: u8,
}

/// A participant's camera: one VP8 track, three simulcast encodings.
///
/// Keyframes are the size of other frames here, so how many are asked for
/// changes no packet rate, only how long a subscriber waits for a layer.
struct Camera {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    /// The SSRC of each encoding, low first.
    ssrcs: [u32; 3],
}

impl Camera {
    async fn add(pc: &Arc<dyn PeerConnection>, i: usize) -> Result<Camera, String> {
        let rids: Vec<&str> = ENCODINGS.iter().map(|e| e.rid).collect();
        let cam = SendTrack::add(
            pc,
            RtpCodecKind::Video,
            peer::vp8(),
            &rids,
            &format!("camera{i}"),
        )
        .await?;
        let ssrcs = [cam.encodings[0].1, cam.encodings[1].1, cam.encodings[2].1];
        Ok(Camera {
            pc: pc.clone(),
            track: cam.track,
            sender: cam.sender,
            ssrcs,
        })
    }

    /// The payload type, the mid and rid extensions and the mid (`None`
    /// until the first answer is applied).
    async fn negotiated(&self) -> Option<Negotiated> {
        let params = self.sender.get_parameters().await.ok()?;
        let payload_type = params.rtp_parameters.codecs.first()?.payload_type;
        let (mut mid_ext, mut rid_ext) = (None, None);
        for h in &params.rtp_parameters.header_extensions {
            match h.uri.as_str() {
                SDES_MID_URI => mid_ext = Some(h.id as u8),
                SDES_RTP_STREAM_ID_URI => rid_ext = Some(h.id as u8),
                _ => {}
            }
        }
        // The mid of the camera's transceiver, found by its sender.
        let mut mid = None;
        for t in self.pc.get_transceivers().await {
            let sender = t.sender().await.ok().flatten();
            if sender.is_some_and(|s| Arc::ptr_eq(&s, &self.sender)) {
                mid = t.mid().await.ok().flatten();
            }
        }
        Some(Negotiated {
            payload_type,
            mid_ext: mid_ext?,
            mid: Bytes::from(mid?.into_bytes()),
            rid_ext: rid_ext?,
        })
    }

    /// Starts sending, 30 frames/s on every layer, a keyframe first and
    /// then when asked, until the task is aborted.
    fn start(self, tally: Arc<Tally>, keys: Arc<Keyframes>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            // What the SFU asks for, read while the frames go out.
            let wanted: Arc<[AtomicBool; 3]> =
                Arc::new(std::array::from_fn(|_| AtomicBool::new(true)));
            let listener = tokio::spawn(listen_for_keyframe_requests(
                self.track.clone(),
                self.ssrcs,
                wanted.clone(),
                keys.clone(),
            ));
            let _stop_listening = AbortOnDrop(listener);
            let mut every = tokio::time::interval(Duration::from_secs(1) / FPS);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut neg = None;
            let mut seq: [u16; 3] = std::array::from_fn(|_| rand::random());
            let ts0: u32 = rand::random();
            let mut frame: u32 = 0;
            loop {
                every.tick().await;
                if neg.is_none() {
                    neg = self.negotiated().await;
                }
                let Some(n) = &neg else { continue };
                let timestamp = ts0.wrapping_add(frame.wrapping_mul(90_000 / FPS));
                for (l, enc) in ENCODINGS.iter().enumerate() {
                    let key = wanted[l].swap(false, Ordering::Relaxed);
                    if key {
                        keys.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    for k in 0..enc.packets_per_frame {
                        let mut header = rtp::header::Header {
                            version: 2,
                            payload_type: n.payload_type,
                            sequence_number: seq[l],
                            timestamp,
                            ssrc: self.ssrcs[l],
                            marker: k + 1 == enc.packets_per_frame,
                            ..Default::default()
                        };
                        seq[l] = seq[l].wrapping_add(1);
                        let _ = header.set_extension(n.mid_ext, n.mid.clone());
                        let _ =
                            header.set_extension(n.rid_ext, Bytes::from_static(enc.rid.as_bytes()));
                        let payload = vp8_payload(l, k == 0, key, tally.now_us());
                        // Not bound (negotiation under way): this one is lost.
                        let _ = self.track.write_rtp(rtp::Packet { header, payload }).await;
                    }
                }
                frame = frame.wrapping_add(1);
            }
        })
    }
}

/// Keyframe requests heard and keyframes sent, over all cameras.
#[derive(Default)]
struct Keyframes {
    requests: AtomicU64,
    sent: AtomicU64,
}

/// Aborts a task when dropped (the camera's listener ends with the camera).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the RTCP the SFU sends about a camera (its queue must be drained
/// anyway) and marks the layer of each PLI or FIR for a keyframe.
async fn listen_for_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    ssrcs: [u32; 3],
    wanted: Arc<[AtomicBool; 3]>,
    keys: Arc<Keyframes>,
) {
    use webrtc::media_stream::track_local::TrackLocalEvent;
    loop {
        let packets = match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => packets,
            Some(_) => continue,
            // Not bound yet (negotiation under way).
            None => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        for ssrc in peer::keyframe_requests(&packets) {
            if let Some(l) = ssrcs.iter().position(|&s| s == ssrc) {
                keys.requests.fetch_add(1, Ordering::Relaxed);
                wanted[l].store(true, Ordering::Relaxed);
            }
        }
    }
}

/// One RTP payload of layer `layer`: the VP8 payload descriptor (RFC 7741:
/// S on a frame's first packet, partition 0), on the first packet the VP8
/// frame tag (RFC 6386 §9.1: P=0 on a keyframe, shown, a first-partition
/// size) and on a keyframe the start code and picture size, filler, then
/// the trailer: the layer and the send time (microseconds, big-endian).
fn vp8_payload(layer: usize, first: bool, key: bool, sent_us: u64) -> Bytes {
    let enc = &ENCODINGS[layer];
    let mut b = Vec::with_capacity(enc.bytes);
    b.push(if first { 0x10 } else { 0x00 });
    if first {
        let first_partition: u32 = 200;
        let tag = (first_partition << 5) | 0x10 | u32::from(!key);
        b.extend_from_slice(&tag.to_le_bytes()[..3]);
        if key {
            b.extend_from_slice(&[0x9d, 0x01, 0x2a]);
            b.extend_from_slice(&enc.width.to_le_bytes());
            b.extend_from_slice(&enc.height.to_le_bytes());
        }
    }
    b.resize(enc.bytes - TRAILER, 0x5a);
    b.push(layer as u8);
    b.extend_from_slice(&sent_us.to_be_bytes());
    Bytes::from(b)
}

/// What participant `i` of `ids` asks to see: `(publisher, layer)` for
/// every other participant, and whom it shows in spotlight.
fn layout(i: usize, ids: &[String]) -> (Vec<(String, &'static str)>, Option<String>) {
    let spotlight = (i < SPOTLIGHTS).then(|| ids[(i + 1) % ids.len()].clone());
    let wants = ids
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, id)| {
            let layer = if Some(id) == spotlight.as_ref() {
                "high"
            } else {
                "low"
            };
            (id.clone(), layer)
        })
        .collect();
    (wants, spotlight)
}

pub async fn video(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let members = args.members(8).clamp(2, 99);
    let (accounts, rooms) = voice::rooms(server, members, 1).await?;
    let room = &rooms[0];
    let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let spotlights = SPOTLIGHTS.min(members);
    let tally = Tally::new();
    let stats = VideoTally::new();
    let keys = Arc::new(Keyframes::default());
    let rss_before = server.rss_kib();
    let (mut all, mut cameras) = (Vec::new(), Vec::new());
    for (i, account) in accounts.iter().enumerate() {
        let (wants, spotlight) = layout(i, &ids);
        let joined_at = Arc::new(AtomicU64::new(0));
        let view = View {
            spotlight,
            joined_at: joined_at.clone(),
            saw_video: AtomicBool::new(i == 0),
            stats: stats.clone(),
        };
        let pc = peer::client_hearing_feedback(
            Receiver::reading(
                tally.clone(),
                joined_at.clone(),
                i > 0,
                Some(Arc::new(view)),
            ),
            "127.0.0.1:0",
        )
        .await?;
        let mic = Mic::add(&pc, i).await?;
        let camera = Camera::add(&pc, i).await?;
        let mut after_answer: Vec<Value> =
            vec![json!({"op": "voice_state", "d": {"self_video": true}})];
        after_answer.extend(wants.into_iter().map(|(user_id, layer)| {
            json!({"op": "voice_layer", "d": {"user_id": user_id, "layer": layer}})
        }));
        let call = Call {
            pc: pc.clone(),
            mic,
            joined_at,
            after_answer,
        };
        all.push(voice::join(server, i, &account.token, room, tally.clone(), call).await?);
        cameras.push(camera.start(tally.clone(), keys.clone()));
    }
    let window = voice_common::measure(args, &tally, server.nodes[0].pid, Some(&server.base)).await;
    let rss_after = server.rss_kib();
    for t in &cameras {
        t.abort();
    }
    for p in all.iter() {
        p.task.abort();
    }
    for p in all {
        let _ = p.pc.close().await;
    }

    // Offered: everyone hears everyone; spotlights get f of one publisher,
    // every other (subscriber, publisher) pair gets q.
    let pairs = members * (members - 1);
    let audio_offered = voice_common::speakers_offer(members, members);
    let spot_offered = spotlights * packets_per_sec(2);
    let thumb_offered = (pairs - spotlights) * packets_per_sec(0);
    let video_offered = (spot_offered + thumb_offered) as f64;
    let published = members * (PACKETS_PER_SEC + (0..3).map(packets_per_sec).sum::<usize>());
    let secs = window.seconds;
    let (spot, thumb) = (stats.layer_counts(0), stats.layer_counts(1));
    let per_sec = |c: [u64; 3]| c.map(|n| (n as f64 / secs).round() as u64);
    let layers = |c: [u64; 3]| {
        let [q, h, f] = per_sec(c);
        format!("q {q} h {h} f {f}")
    };
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let (audio_us, video_us, first_video) = (
        stats.audio_us.lock().clone(),
        stats.video_us.lock().clone(),
        stats.first_video_us.lock().clone(),
    );
    let about = json!({
        "server": "hearth",
        "peer_connections_per_participant": 1,
        "spotlights": spotlights,
        "published_per_sec": published,
        "audio_offered_per_sec": audio_offered,
        "video_offered_per_sec": video_offered,
        "audio_per_sec": audio_us.len() as f64 / secs,
        "video_per_sec": video_us.len() as f64 / secs,
        // Packets/s received per layer [q, h, f], by what the subscriber shows.
        "spotlight_layers_per_sec": per_sec(spot),
        "thumbnail_layers_per_sec": per_sec(thumb),
        "spotlight_layers_offered_per_sec": [0, 0, spot_offered],
        "thumbnail_layers_offered_per_sec": [thumb_offered, 0, 0],
        "audio_latency_ms": {"p50": ms(&audio_us, 0.5), "p99": ms(&audio_us, 0.99), "p999": ms(&audio_us, 0.999)},
        "video_latency_ms": {"p50": ms(&video_us, 0.5), "p99": ms(&video_us, 0.99), "p999": ms(&video_us, 0.999)},
        "first_video_p50_ms": ms(&first_video, 0.5),
        "first_video_p99_ms": ms(&first_video, 0.99),
        "first_video_joined": first_video.len(),
        // Over the whole run (joins included), all cameras and layers.
        "keyframe_requests_heard": keys.requests.load(Ordering::Relaxed),
        "keyframes_sent": keys.sent.load(Ordering::Relaxed),
    });
    let mut out = voice_common::outcome(
        &tally,
        Run {
            scenario: "voice-video",
            rooms: 1,
            members,
            participants: members,
            offered_per_sec: audio_offered + video_offered,
            window,
            rss_before,
            rss_after,
            about,
        },
    );
    out.notes.push_str(&format!(
        "\n                 published {published} packets/s (audio 50, video q {} h {} f {} per participant); \
         video received per s: spotlight {} (offered f {spot_offered}), thumbnails {} (offered q {thumb_offered}); \
         audio p50/p99 {:.2}/{:.2} ms, video p50/p99 {:.2}/{:.2} ms; join → first video packet p50 {:.1} ms p99 {:.1} ms; \
         {} keyframe requests heard, {} keyframes sent",
        packets_per_sec(0),
        packets_per_sec(1),
        packets_per_sec(2),
        layers(spot),
        layers(thumb),
        ms(&audio_us, 0.5),
        ms(&audio_us, 0.99),
        ms(&video_us, 0.5),
        ms(&video_us, 0.99),
        ms(&first_video, 0.5),
        ms(&first_video, 0.99),
        keys.requests.load(Ordering::Relaxed),
        keys.sent.load(Ordering::Relaxed),
    ));
    Ok(vec![out])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_vp8_with_a_trailer() {
        let key = vp8_payload(2, true, true, 0x0102_0304_0506_0708);
        assert_eq!(key.len(), ENCODINGS[2].bytes);
        // Descriptor S=1, PID=0; frame tag P=0 and shown; start code.
        assert_eq!(key[0], 0x10);
        assert_eq!(key[1] & 0x01, 0);
        assert_eq!(key[1] & 0x10, 0x10);
        assert_eq!(&key[4..7], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([key[7], key[8]]), 1280);
        assert_eq!(key[key.len() - TRAILER], 2);
        assert_eq!(
            u64::from_be_bytes(
                key[key.len() - 8..]
                    .try_into()
                    .expect("the trailer's 8 bytes")
            ),
            0x0102_0304_0506_0708
        );
        let inter = vp8_payload(0, true, false, 1);
        assert_eq!(inter[1] & 0x01, 1);
        assert_eq!(inter.len(), ENCODINGS[0].bytes);
        let middle = vp8_payload(1, false, false, 1);
        assert_eq!(middle[0], 0x00);
    }

    #[test]
    fn layouts() {
        let ids: Vec<String> = (10..14).map(|i| i.to_string()).collect();
        let (wants, spot) = layout(0, &ids);
        assert_eq!(spot.as_deref(), Some("11"));
        assert_eq!(
            wants,
            vec![
                ("11".to_string(), "high"),
                ("12".to_string(), "low"),
                ("13".to_string(), "low")
            ]
        );
        let (wants, spot) = layout(3, &ids);
        assert_eq!(spot, None);
        assert!(wants.iter().all(|(id, l)| *l == "low" && id != "13"));
    }
}

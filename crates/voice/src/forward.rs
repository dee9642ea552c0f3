//! The forwarding path: one reader task per published track, writing each packet to every
//! subscriber's `TrackLocalStaticRTP`, rewritten for that subscriber.
//!
//! Per subscriber the forwarder keeps one outgoing stream whatever layer it carries: its own
//! SSRC and payload type, and sequence numbers and timestamps continued across layer
//! switches (offsets chosen at the switch so the first packet of the new layer follows the
//! last of the old). A switch happens only at a keyframe of the new layer, which is
//! requested (PLI, at most one per layer per `pli_interval`). Writes never wait: a
//! subscriber whose connection queue is full loses that packet instead of stalling the
//! others (NACK can recover it).

use crate::codec::{self, VideoCodec};
use crate::layers::{self, Congestion};
use crate::sfu::{Member, SfuInner};
use crate::types::{Layer, TrackKind};
use futures::FutureExt;
use parking_lot::{Mutex, RwLock};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// A layer is available while it has sent within this long.
const LAYER_STALE: Duration = Duration::from_secs(2);

/// A track a participant publishes, as the room sees it.
pub(crate) struct Published {
    pub(crate) id: u64,
    pub(crate) publisher: Arc<Member>,
    pub(crate) kind: TrackKind,
    /// The msid the subscribers see.
    pub(crate) stream_id: String,
    pub(crate) track_id: String,
    pub(crate) codec: RTCRtpCodec,
    video_codec: VideoCodec,
    simulcast: bool,
    subs: RwLock<Arc<Vec<Arc<Subscription>>>>,
    layers: Mutex<LayerTable>,
    want_key: [AtomicBool; 3],
    remote: Arc<dyn TrackRemote>,
}

#[derive(Default)]
struct LayerTable {
    ssrc: [Option<u32>; 3],
    last_seen: [Option<Instant>; 3],
    /// Bytes in the current one-second window and the last full window's bitrate.
    window_bytes: [u64; 3],
    window_start: Option<Instant>,
    rate: [u64; 3],
    last_pli: [Option<Instant>; 3],
}

/// What the negotiation fixed for a subscriber's leg.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutParams {
    pub(crate) payload_type: u8,
    pub(crate) audio_level_ext: Option<u8>,
}

/// One subscriber's copy of a published track.
pub(crate) struct Subscription {
    pub(crate) subscriber: Arc<Member>,
    pub(crate) track: Arc<TrackLocalStaticRTP>,
    pub(crate) ssrc: u32,
    pub(crate) params: Mutex<Option<OutParams>>,
    state: Mutex<SubState>,
    /// The layer it forwards now (255 = none yet), for keyframe requests from it.
    current: AtomicU8,
}

struct SubState {
    current: Option<Layer>,
    /// Input sequence number → output: out = in + seq_offset.
    seq_offset: u16,
    ts_offset: u32,
    started: bool,
    last_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
    congestion: Congestion,
}

impl Subscription {
    pub(crate) fn new(
        subscriber: Arc<Member>,
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
    ) -> Subscription {
        Subscription {
            subscriber,
            track,
            ssrc,
            params: Mutex::new(None),
            state: Mutex::new(SubState {
                current: None,
                seq_offset: 0,
                ts_offset: 0,
                started: false,
                last_seq: 0,
                last_ts: 0,
                last_at: None,
                congestion: Congestion::new(Instant::now()),
            }),
            current: AtomicU8::new(u8::MAX),
        }
    }

    pub(crate) fn current_layer(&self) -> Option<Layer> {
        match self.current.load(Ordering::Relaxed) {
            u8::MAX => None,
            i => Some(Layer::from_index(i)),
        }
    }
}

/// What one incoming packet is, worked out once for all subscribers.
struct Incoming<'a> {
    pkt: &'a rtp::Packet,
    layer: Layer,
    keyframe: bool,
    audio_level: Option<u8>,
    now: Instant,
}

impl Published {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        publisher: Arc<Member>,
        kind: TrackKind,
        codec: RTCRtpCodec,
        simulcast: bool,
        remote: Arc<dyn TrackRemote>,
    ) -> Published {
        // Microphone and camera share a stream (browsers lip-sync within one); the screen is
        // its own. A browser's `ontrack` sees this id as `streams[0].id`.
        let stream_id = match kind {
            TrackKind::Screen => format!("{}-screen", publisher.id),
            _ => publisher.id.to_string(),
        };
        let track_id = format!("{}-{}-{}", publisher.id, kind.as_str(), id);
        Published {
            id,
            kind,
            stream_id,
            track_id,
            video_codec: VideoCodec::from_mime(&codec.mime_type),
            codec,
            simulcast,
            subs: RwLock::new(Arc::new(Vec::new())),
            layers: Mutex::new(LayerTable::default()),
            want_key: Default::default(),
            remote,
            publisher,
        }
    }

    pub(crate) fn add_subscriber(&self, sub: Arc<Subscription>) {
        let mut subs = self.subs.write();
        let mut next: Vec<_> = subs
            .iter()
            .filter(|s| s.subscriber.id != sub.subscriber.id)
            .cloned()
            .collect();
        next.push(sub);
        *subs = Arc::new(next);
        // A new subscriber of video needs a keyframe to start.
        if !self.kind.is_audio() {
            for l in &self.want_key {
                l.store(true, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn remove_subscriber(&self, sub: &Arc<Subscription>) {
        let mut subs = self.subs.write();
        let next: Vec<_> = subs
            .iter()
            .filter(|s| !Arc::ptr_eq(s, sub))
            .cloned()
            .collect();
        *subs = Arc::new(next);
    }

    /// A subscriber asked for a keyframe (PLI/FIR): pass it on for the layer it gets.
    pub(crate) fn keyframe_requested(&self, layer: Option<Layer>) {
        let layer = layer.unwrap_or(Layer::High);
        self.want_key[layer.index()].store(true, Ordering::Relaxed);
    }

    /// The first stream opened for a layer is its media stream; later ones (an RTX or FEC
    /// repair flow) are not forwarded: their payloads are not the codec's.
    fn note_layer(&self, layer: Layer, ssrc: u32) {
        self.layers.lock().ssrc[layer.index()].get_or_insert(ssrc);
    }

    fn layer_of(&self, ssrc: u32) -> Option<Layer> {
        let t = self.layers.lock();
        (0..3)
            .find(|&i| t.ssrc[i] == Some(ssrc))
            .map(|i| Layer::from_index(i as u8))
    }

    /// Sends the keyframe requests that are due (throttled per layer).
    async fn send_keyframe_requests(&self, sfu: &SfuInner, now: Instant) {
        for (i, want) in self.want_key.iter().enumerate() {
            if !want.load(Ordering::Relaxed) {
                continue;
            }
            let ssrc = {
                let mut t = self.layers.lock();
                let due = t.last_pli[i].is_none_or(|at| {
                    now.saturating_duration_since(at) >= sfu.cfg.limits.pli_interval
                });
                match t.ssrc[i] {
                    Some(ssrc) if due => {
                        t.last_pli[i] = Some(now);
                        want.store(false, Ordering::Relaxed);
                        ssrc
                    }
                    // No such layer: nothing to ask.
                    None => {
                        want.store(false, Ordering::Relaxed);
                        continue;
                    }
                    Some(_) => continue,
                }
            };
            sfu.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            if let Err(e) = self.remote.write_rtcp(vec![Box::new(pli)]).await {
                // Asked again at the next interval: a lost request would
                // otherwise leave a subscriber waiting for a keyframe that
                // nobody asks for.
                want.store(true, Ordering::Relaxed);
                tracing::debug!(track = self.id, error = %e, "keyframe request not sent");
            }
        }
    }

    /// Available layers, the bitrate of each (measured, else configured).
    fn availability(&self, now: Instant, defaults: [u64; 3]) -> ([bool; 3], [u64; 3]) {
        let t = self.layers.lock();
        let mut avail = [false; 3];
        let mut rates = defaults;
        for i in 0..3 {
            avail[i] =
                t.last_seen[i].is_some_and(|at| now.saturating_duration_since(at) < LAYER_STALE);
            if t.rate[i] > 0 {
                rates[i] = t.rate[i];
            }
        }
        (avail, rates)
    }

    fn account(&self, layer: Layer, bytes: usize, now: Instant) {
        let mut t = self.layers.lock();
        let i = layer.index();
        t.last_seen[i] = Some(now);
        let start = *t.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= Duration::from_secs(1) {
            let secs = now.saturating_duration_since(start).as_secs_f64();
            for j in 0..3 {
                t.rate[j] = (t.window_bytes[j] as f64 * 8.0 / secs) as u64;
                t.window_bytes[j] = 0;
            }
            t.window_start = Some(now);
        }
        t.window_bytes[i] += bytes as u64;
    }

    fn forward(&self, sfu: &SfuInner, inc: &Incoming<'_>) {
        let subs = self.subs.read().clone();
        let (avail, rates) = if self.simulcast {
            self.availability(inc.now, sfu.cfg.layer_bitrates)
        } else {
            ([false, false, true], sfu.cfg.layer_bitrates)
        };
        for sub in subs.iter() {
            if self.kind.is_audio() && sub.subscriber.is_deaf() {
                continue;
            }
            let Some(params) = *sub.params.lock() else {
                continue; // not negotiated yet
            };
            let Some(out) = self.rewrite(sub, params, inc, avail, rates) else {
                continue;
            };
            let bytes = out.payload.len();
            match sub.track.write_rtp(out).now_or_never() {
                Some(Ok(())) => {
                    sfu.stats.packets_forwarded.fetch_add(1, Ordering::Relaxed);
                    sfu.stats
                        .bytes_forwarded
                        .fetch_add(bytes as u64, Ordering::Relaxed);
                }
                _ => {
                    sfu.stats.packets_dropped.fetch_add(1, Ordering::Relaxed);
                    // A keyframe the subscriber never got (its SRTP not ready
                    // yet, a full queue): what follows cannot be decoded
                    // without another, so ask for one.
                    if inc.keyframe {
                        self.want_key[inc.layer.index()].store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// The packet as this subscriber gets it, or `None` when it gets nothing of it.
    fn rewrite(
        &self,
        sub: &Subscription,
        params: OutParams,
        inc: &Incoming<'_>,
        avail: [bool; 3],
        rates: [u64; 3],
    ) -> Option<rtp::Packet> {
        let mut st = sub.state.lock();
        let target = if self.simulcast {
            let current_rate = st.current.map_or(0, |c| rates[c.index()]);
            // The count first: the estimator writes the estimate before counting.
            let congestion = sub.subscriber.congestion();
            let estimate = sub.subscriber.estimate();
            let current = st.current.unwrap_or(Layer::High);
            let ceiling =
                st.congestion
                    .update(estimate, congestion, current, current_rate, inc.now);
            let shown = sub.subscriber.shown_layer(self.publisher.id);
            layers::choose(avail, shown, ceiling, sub.subscriber.bandwidth_cap(), rates)?
        } else {
            Layer::High
        };
        if st.current != Some(target) {
            if inc.layer == target && (inc.keyframe || self.kind.is_audio()) {
                // Switch here: the new layer continues the old one's numbering.
                let elapsed = st
                    .last_at
                    .map_or(Duration::ZERO, |at| inc.now.saturating_duration_since(at));
                let ticks =
                    (elapsed.as_secs_f64() * f64::from(self.codec.clock_rate.max(1))) as u32;
                if st.started {
                    st.seq_offset = st
                        .last_seq
                        .wrapping_add(1)
                        .wrapping_sub(inc.pkt.header.sequence_number);
                    st.ts_offset = st
                        .last_ts
                        .wrapping_add(ticks.max(1))
                        .wrapping_sub(inc.pkt.header.timestamp);
                }
                st.current = Some(target);
                sub.current.store(target as u8, Ordering::Relaxed);
            } else {
                self.want_key[target.index()].store(true, Ordering::Relaxed);
            }
        }
        if st.current != Some(inc.layer) {
            return None;
        }
        let seq = inc.pkt.header.sequence_number.wrapping_add(st.seq_offset);
        let ts = inc.pkt.header.timestamp.wrapping_add(st.ts_offset);
        if !st.started || (seq.wrapping_sub(st.last_seq) as i16) > 0 {
            st.last_seq = seq;
            st.last_ts = ts;
            st.last_at = Some(inc.now);
            st.started = true;
        }
        drop(st);
        let mut header = rtp::header::Header {
            version: 2,
            padding: false,
            extension: false,
            marker: inc.pkt.header.marker,
            payload_type: params.payload_type,
            sequence_number: seq,
            timestamp: ts,
            ssrc: sub.ssrc,
            csrc: Vec::new(),
            extension_profile: 0,
            extensions: Vec::new(),
            extensions_padding: 0,
        };
        if let (Some(id), Some(level)) = (params.audio_level_ext, inc.audio_level) {
            let _ = header.set_extension(id, bytes::Bytes::copy_from_slice(&[level]));
        }
        Some(rtp::Packet {
            header,
            payload: inc.pkt.payload.clone(),
        })
    }
}

/// Maps simulcast rids to layers: by name when they are the usual ones (`q`/`h`/`f`,
/// `l`/`m`/`h`, `low`/`mid`/`high`, `0`/`1`/`2`), else by their order in the offer (low
/// first, as browsers list `sendEncodings` by convention).
pub(crate) fn rid_layers(rids: &[String]) -> Vec<(String, Layer)> {
    let has_f = rids.iter().any(|r| r == "f");
    let by_name = |r: &str| match r {
        "q" | "l" | "low" | "lo" | "0" => Some(Layer::Low),
        "m" | "mid" | "med" | "1" => Some(Layer::Medium),
        "h" if has_f => Some(Layer::Medium),
        "h" | "f" | "high" | "hi" | "2" => Some(Layer::High),
        _ => None,
    };
    let named: Option<Vec<_>> = rids
        .iter()
        .map(|r| by_name(r).map(|l| (r.clone(), l)))
        .collect();
    match named {
        Some(v) => v,
        None => {
            let n = rids.len();
            rids.iter()
                .enumerate()
                .map(|(i, r)| {
                    let layer = match (n, i) {
                        (1, _) => Layer::High,
                        (2, 0) => Layer::Low,
                        (2, _) => Layer::High,
                        (_, i) => Layer::from_index(i.min(2) as u8),
                    };
                    (r.clone(), layer)
                })
                .collect()
        }
    }
}

/// What the forwarder task of a newly received track needs.
pub(crate) struct ForwarderSpec {
    pub(crate) sfu: Arc<SfuInner>,
    pub(crate) publisher: Arc<Member>,
    pub(crate) remote: Arc<dyn TrackRemote>,
    pub(crate) kind: TrackKind,
    pub(crate) rids: Vec<String>,
    pub(crate) audio_level_ext: Option<u8>,
    pub(crate) closing: watch::Receiver<bool>,
    /// Set when the publisher's offer no longer sends this track.
    pub(crate) stop: watch::Receiver<bool>,
}

/// Reads the track until it ends or its publisher leaves; publishes it to the room at its
/// first packet and unpublishes it at the end.
pub(crate) async fn run_forwarder(spec: ForwarderSpec) {
    let ForwarderSpec {
        sfu,
        publisher,
        remote,
        kind,
        rids,
        audio_level_ext,
        mut closing,
        mut stop,
    } = spec;
    let rid_map = rid_layers(&rids);
    let simulcast = rid_map.len() > 1;
    let mut published: Option<Arc<Published>> = None;
    loop {
        let evt = tokio::select! {
            evt = remote.poll() => evt,
            _ = closing.changed() => break,
            _ = stop.changed() => break,
        };
        let Some(evt) = evt else { break };
        match evt {
            TrackRemoteEvent::OnOpen(init) => {
                let layer = init
                    .rid
                    .as_deref()
                    .and_then(|rid| rid_map.iter().find(|(r, _)| r == rid).map(|(_, l)| *l))
                    .unwrap_or(Layer::High);
                if published.is_none() {
                    let Some(codec) = remote.codec(init.ssrc).await else {
                        tracing::warn!(participant = %publisher.id, "track without a codec; not forwarded");
                        break;
                    };
                    let id = sfu.next_track_id();
                    let p = Arc::new(Published::new(
                        id,
                        publisher.clone(),
                        kind,
                        codec,
                        simulcast,
                        remote.clone(),
                    ));
                    if !sfu.publish(&p) {
                        break;
                    }
                    published = Some(p);
                }
                if let Some(p) = &published {
                    p.note_layer(layer, init.ssrc);
                }
            }
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                let Some(p) = &published else { continue };
                sfu.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                // Only the media streams noted at their opening: repair flows and strays are not
                // forwarded as media.
                let Some(layer) = p.layer_of(pkt.header.ssrc) else {
                    continue;
                };
                p.account(layer, pkt.payload.len(), now);
                let audio_level = if kind.is_audio() {
                    audio_level_ext
                        .and_then(|id| pkt.header.get_extension(id))
                        .and_then(|b| codec::audio_level(&b))
                } else {
                    None
                };
                if !publisher.may_forward(kind) {
                    sfu.stats.packets_gated.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if let Some(level) = audio_level {
                    publisher
                        .meter
                        .observe(level, sfu.cfg.speaking.threshold, now);
                }
                let keyframe =
                    !kind.is_audio() && codec::is_keyframe_start(p.video_codec, &pkt.payload);
                p.forward(
                    &sfu,
                    &Incoming {
                        pkt: &pkt,
                        layer,
                        keyframe,
                        audio_level,
                        now,
                    },
                );
                p.send_keyframe_requests(&sfu, now).await;
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    if let Some(p) = published {
        sfu.unpublish(&p);
    }
}

/// Reads a subscriber's RTCP for one subscription (keyframe requests, REMB) until it is
/// stopped or the track unbinds.
pub(crate) async fn run_feedback(
    published: Arc<Published>,
    sub: Arc<Subscription>,
    mut stop: watch::Receiver<bool>,
) {
    use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
    use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
    use webrtc::media_stream::track_local::TrackLocalEvent;
    loop {
        let evt = tokio::select! {
            evt = sub.track.poll() => evt,
            _ = stop.changed() => break,
        };
        let packets = match evt {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => packets,
            Some(_) => continue,
            None => {
                // Not bound (between negotiations): look again shortly, until stopped.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(250)) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        for p in &packets {
            let any = p.as_any();
            if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                published.keyframe_requested(sub.current_layer());
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                sub.subscriber.note_remb(remb.bitrate as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rids_to_layers() {
        let l = |v: &[&str]| {
            rid_layers(&names(v))
                .into_iter()
                .map(|(_, l)| l)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            l(&["q", "h", "f"]),
            vec![Layer::Low, Layer::Medium, Layer::High]
        );
        assert_eq!(
            l(&["l", "m", "h"]),
            vec![Layer::Low, Layer::Medium, Layer::High]
        );
        assert_eq!(
            l(&["f", "h", "q"]),
            vec![Layer::High, Layer::Medium, Layer::Low]
        );
        assert_eq!(
            l(&["a", "b", "c"]),
            vec![Layer::Low, Layer::Medium, Layer::High]
        );
        assert_eq!(l(&["a", "b"]), vec![Layer::Low, Layer::High]);
        assert!(l(&[]).is_empty());
    }
}

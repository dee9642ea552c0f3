//! A published track and each subscriber's copy of it: which simulcast layer a subscriber
//! gets, and how its packets are renumbered.
//!
//! Per subscriber the room keeps one outgoing stream whatever layer it carries: str0m's
//! SSRC for the subscriber's m-section, the payload type the subscriber negotiated for the
//! publisher's codec, and sequence numbers and timestamps continued across layer switches
//! (offsets chosen at the switch so the first packet of the new layer follows the last of
//! the old). A switch happens only at a keyframe of the new layer, which is requested (PLI,
//! throttled per layer, `Track::due_keyframe_requests`).
//!
//! Nothing here does I/O: the room loop (`room.rs`) owns the connections and calls in.

use crate::codec::VideoCodec;
use crate::layers::{self, Congestion};
use crate::sfu::Member;
use crate::types::{Layer, ParticipantId, TrackKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::format::CodecSpec;
use str0m::media::{Mid, Pt};
use str0m::rtp::Ssrc;

/// A layer is available while it has sent within this long.
const LAYER_STALE: Duration = Duration::from_secs(2);

/// Keyframe requests for a layer are at least this far apart even when the last one was
/// answered (the throttle proper, `pli_interval`, holds while it is not).
const PLI_MIN_GAP: Duration = Duration::from_millis(100);

/// A track a participant publishes, as the room sees it.
pub(crate) struct Track {
    pub(crate) id: u64,
    pub(crate) publisher: Arc<Member>,
    /// The publisher's m-section that carries it.
    pub(crate) mid: Mid,
    pub(crate) kind: TrackKind,
    /// The publisher's payload type for its codec (packets of other types are not media).
    pub(crate) pt: Pt,
    /// The msid the subscribers see.
    pub(crate) stream_id: String,
    pub(crate) track_id: String,
    pub(crate) codec: CodecSpec,
    pub(crate) video_codec: VideoCodec,
    pub(crate) simulcast: bool,
    rid_map: Vec<(String, Layer)>,
    /// The first SSRC seen on each layer: its media stream (later ones are ignored).
    ssrc: [Option<Ssrc>; 3],
    last_seen: [Option<Instant>; 3],
    /// Bytes in the current one-second window and the last full window's bitrate.
    window_bytes: [u64; 3],
    window_start: Option<Instant>,
    rate: [u64; 3],
    last_pli: [Option<Instant>; 3],
    /// A keyframe arrived on the layer since its last request.
    answered: [bool; 3],
    want_key: [bool; 3],
}

impl Track {
    pub(crate) fn new(
        id: u64,
        publisher: Arc<Member>,
        mid: Mid,
        kind: TrackKind,
        pt: Pt,
        codec: CodecSpec,
        rids: &[String],
    ) -> Track {
        // Microphone and camera share a stream (browsers lip-sync within one); the screen is
        // its own. A browser's `ontrack` sees this id as `streams[0].id`.
        let stream_id = match kind {
            TrackKind::Screen => format!("{}-screen", publisher.id),
            _ => publisher.id.to_string(),
        };
        let track_id = format!("{}-{}-{}", publisher.id, kind.as_str(), id);
        let rid_map = rid_layers(rids);
        Track {
            id,
            mid,
            kind,
            pt,
            stream_id,
            track_id,
            video_codec: VideoCodec::from_codec(codec.codec),
            codec,
            simulcast: rid_map.len() > 1,
            rid_map,
            publisher,
            ssrc: [None; 3],
            last_seen: [None; 3],
            window_bytes: [0; 3],
            window_start: None,
            rate: [0; 3],
            last_pli: [None; 3],
            answered: [false; 3],
            // A new track's subscribers need a keyframe to start.
            want_key: [true; 3],
        }
    }

    pub(crate) fn publisher_id(&self) -> ParticipantId {
        self.publisher.id
    }

    /// The layer a packet of this rid (and SSRC) is, or `None` for a stream that is not the
    /// layer's media stream (a second SSRC for a layer: not forwarded as media).
    pub(crate) fn layer_of(&mut self, rid: Option<&str>, ssrc: Ssrc) -> Option<Layer> {
        let layer = match rid {
            Some(rid) => self
                .rid_map
                .iter()
                .find(|(r, _)| r == rid)
                .map_or(Layer::High, |(_, l)| *l),
            None => Layer::High,
        };
        let first = self.ssrc[layer.index()].get_or_insert(ssrc);
        (*first == ssrc).then_some(layer)
    }

    pub(crate) fn account(&mut self, layer: Layer, bytes: usize, now: Instant) {
        let i = layer.index();
        self.last_seen[i] = Some(now);
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= Duration::from_secs(1) {
            let secs = now.saturating_duration_since(start).as_secs_f64();
            for j in 0..3 {
                self.rate[j] = (self.window_bytes[j] as f64 * 8.0 / secs) as u64;
                self.window_bytes[j] = 0;
            }
            self.window_start = Some(now);
        }
        self.window_bytes[i] += bytes as u64;
    }

    /// Available layers and the bitrate of each (measured, else configured).
    pub(crate) fn availability(&self, now: Instant, defaults: [u64; 3]) -> ([bool; 3], [u64; 3]) {
        if !self.simulcast {
            return ([false, false, true], defaults);
        }
        let mut avail = [false; 3];
        let mut rates = defaults;
        for i in 0..3 {
            avail[i] =
                self.last_seen[i].is_some_and(|at| now.saturating_duration_since(at) < LAYER_STALE);
            if self.rate[i] > 0 {
                rates[i] = self.rate[i];
            }
        }
        (avail, rates)
    }

    /// Someone needs a keyframe of this layer (`None`: the top one).
    pub(crate) fn want_keyframe(&mut self, layer: Option<Layer>) {
        if !self.kind.is_audio() {
            self.want_key[layer.unwrap_or(Layer::High).index()] = true;
        }
    }

    /// Every layer: a new subscriber starts at a keyframe of whichever it gets.
    pub(crate) fn want_all_keyframes(&mut self) {
        if !self.kind.is_audio() {
            self.want_key = [true; 3];
        }
    }

    /// A keyframe arrived on a layer: its last request is answered.
    pub(crate) fn keyframe_arrived(&mut self, layer: Layer) {
        self.answered[layer.index()] = true;
    }

    /// The SSRCs to send a keyframe request to now; a layer not seen yet has nobody to ask
    /// and its wish is dropped. Throttled per layer: one request outstanding, the next after
    /// `every`, or after [`PLI_MIN_GAP`] once a keyframe answered it. (Joins come ~300 ms
    /// apart; with a flat 500 ms throttle each joiner's first video waited for the last
    /// joiner's request to age: ~455 ms from join instead of ~310.)
    pub(crate) fn due_keyframe_requests(&mut self, now: Instant, every: Duration) -> Vec<Ssrc> {
        let mut due = Vec::new();
        for i in 0..3 {
            if !self.want_key[i] {
                continue;
            }
            let Some(ssrc) = self.ssrc[i] else {
                self.want_key[i] = false;
                continue;
            };
            let may = self.last_pli[i].is_none_or(|at| {
                let since = now.saturating_duration_since(at);
                since >= every || (self.answered[i] && since >= PLI_MIN_GAP)
            });
            if may {
                self.last_pli[i] = Some(now);
                self.answered[i] = false;
                self.want_key[i] = false;
                due.push(ssrc);
            }
        }
        due
    }
}

/// What one incoming packet is, worked out once for all subscribers.
pub(crate) struct Incoming {
    pub(crate) layer: Layer,
    pub(crate) keyframe: bool,
    /// Input sequence number (extended) and RTP timestamp.
    pub(crate) seq: u64,
    pub(crate) ts: u32,
    pub(crate) now: Instant,
    pub(crate) avail: [bool; 3],
    pub(crate) rates: [u64; 3],
}

/// What a subscriber gets of one packet.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// Send it with this sequence number and timestamp (`None`: not this packet).
    pub(crate) send: Option<(u64, u32)>,
    /// The publisher should send a keyframe of this layer, to switch to it.
    pub(crate) want_key: Option<Layer>,
}

/// One subscriber's renumbering and layer state for one track.
pub(crate) struct Renumber {
    pub(crate) current: Option<Layer>,
    /// Output = input + offset (extended sequence numbers; wrapping).
    seq_offset: u64,
    ts_offset: u32,
    started: bool,
    last_seq: u64,
    last_ts: u32,
    last_at: Option<Instant>,
    congestion: Congestion,
}

impl Renumber {
    pub(crate) fn new(now: Instant) -> Renumber {
        Renumber {
            current: None,
            seq_offset: 0,
            ts_offset: 0,
            started: false,
            last_seq: 0,
            last_ts: 0,
            last_at: None,
            congestion: Congestion::new(now),
        }
    }

    /// What this subscriber gets of the packet.
    pub(crate) fn decide(
        &mut self,
        track: &Track,
        subscriber: &Member,
        inc: &Incoming,
    ) -> Decision {
        let mut d = Decision::default();
        let target = if track.simulcast {
            let current_rate = self.current.map_or(0, |c| inc.rates[c.index()]);
            // The count first: the estimator writes the estimate before counting.
            let congestion = subscriber.congestion();
            let estimate = subscriber.estimate();
            let current = self.current.unwrap_or(Layer::High);
            let ceiling =
                self.congestion
                    .update(estimate, congestion, current, current_rate, inc.now);
            let shown = subscriber.shown_layer(track.publisher_id());
            match layers::choose(
                inc.avail,
                shown,
                ceiling,
                subscriber.bandwidth_cap(),
                inc.rates,
            ) {
                Some(l) => l,
                None => return d,
            }
        } else {
            Layer::High
        };
        if self.current != Some(target) {
            if inc.layer == target && (inc.keyframe || track.kind.is_audio()) {
                // Switch here: the new layer continues the old one's numbering.
                let elapsed = self
                    .last_at
                    .map_or(Duration::ZERO, |at| inc.now.saturating_duration_since(at));
                let clock = f64::from(track.codec.clock_rate.get().max(1));
                let ticks = (elapsed.as_secs_f64() * clock) as u32;
                if self.started {
                    self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(inc.seq);
                    self.ts_offset = self.last_ts.wrapping_add(ticks.max(1)).wrapping_sub(inc.ts);
                }
                self.current = Some(target);
            } else {
                // Until the new layer's keyframe, the old one goes on (if it still comes).
                d.want_key = Some(target);
            }
        }
        if self.current != Some(inc.layer) {
            return d;
        }
        let seq = inc.seq.wrapping_add(self.seq_offset);
        let ts = inc.ts.wrapping_add(self.ts_offset);
        if !self.started || seq > self.last_seq {
            self.last_seq = seq;
            self.last_ts = ts;
            self.last_at = Some(inc.now);
            self.started = true;
        }
        d.send = Some((seq, ts));
        d
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

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::format::Codec;
    use str0m::media::Frequency;

    fn vp8() -> CodecSpec {
        CodecSpec {
            codec: Codec::Vp8,
            clock_rate: Frequency::NINETY_KHZ,
            channels: None,
            format: Default::default(),
        }
    }

    fn camera(rids: &[&str]) -> Track {
        Track::new(
            9,
            Arc::new(Member::for_test(1)),
            Mid::from("1"),
            TrackKind::Camera,
            Pt::from(96),
            vp8(),
            &names(rids),
        )
    }

    #[test]
    fn keyframe_requests_wait_for_an_answer_or_the_interval() {
        let t0 = Instant::now();
        let every = Duration::from_millis(500);
        let mut t = camera(&["q", "h", "f"]);
        // Nobody to ask before a layer's stream is seen.
        assert!(t.due_keyframe_requests(t0, every).is_empty());
        assert_eq!(t.layer_of(Some("q"), Ssrc::from(11)), Some(Layer::Low));
        assert_eq!(t.layer_of(Some("f"), Ssrc::from(33)), Some(Layer::High));
        // A second SSRC on a layer (a repair flow) is not the layer's media.
        assert_eq!(t.layer_of(Some("q"), Ssrc::from(12)), None);
        t.want_all_keyframes();
        assert_eq!(
            t.due_keyframe_requests(t0, every),
            vec![Ssrc::from(11), Ssrc::from(33)]
        );
        // Outstanding: the next waits for the interval...
        t.want_keyframe(Some(Layer::Low));
        let t1 = t0 + Duration::from_millis(200);
        assert!(t.due_keyframe_requests(t1, every).is_empty());
        // ...unless a keyframe answered it, then 100 ms after the last request is enough.
        t.keyframe_arrived(Layer::Low);
        assert_eq!(t.due_keyframe_requests(t1, every), vec![Ssrc::from(11)]);
        t.want_keyframe(Some(Layer::Low));
        assert!(
            t.due_keyframe_requests(t1 + Duration::from_millis(50), every)
                .is_empty()
        );
        assert_eq!(
            t.due_keyframe_requests(t1 + every, every),
            vec![Ssrc::from(11)]
        );
    }

    #[test]
    fn a_subscriber_switches_layers_at_keyframes_with_continuous_numbers() {
        let t0 = Instant::now();
        let mut t = camera(&["q", "h", "f"]);
        let viewer = Member::for_test(2);
        let mut r = Renumber::new(t0);
        let inc = |layer, keyframe, seq, ts, ms| Incoming {
            layer,
            keyframe,
            seq,
            ts,
            now: t0 + Duration::from_millis(ms),
            avail: [true, true, true],
            rates: [150_000, 500_000, 1_500_000],
        };
        let _ = t.layer_of(Some("f"), Ssrc::from(3));
        // The top layer from its keyframe on; a packet of another layer is not sent.
        assert_eq!(
            r.decide(&t, &viewer, &inc(Layer::High, false, 500, 9_000, 0))
                .send,
            None
        );
        assert_eq!(
            r.decide(&t, &viewer, &inc(Layer::High, true, 501, 9_000, 0))
                .send,
            Some((501, 9_000))
        );
        assert_eq!(
            r.decide(&t, &viewer, &inc(Layer::Low, true, 70, 100, 0))
                .send,
            None
        );
        assert_eq!(
            r.decide(&t, &viewer, &inc(Layer::High, false, 502, 12_000, 33))
                .send,
            Some((502, 12_000))
        );
        // Shown as a thumbnail: the top layer goes on, and a low keyframe is wanted, until
        // one comes; then the low layer continues the numbering.
        viewer.shows.lock().insert(ParticipantId(1), Layer::Low);
        let d = r.decide(&t, &viewer, &inc(Layer::Low, false, 71, 200, 40));
        assert_eq!((d.send, d.want_key), (None, Some(Layer::Low)));
        let d = r.decide(&t, &viewer, &inc(Layer::High, false, 503, 15_000, 66));
        assert_eq!(d.send, Some((503, 15_000)));
        let d = r.decide(&t, &viewer, &inc(Layer::Low, true, 72, 300, 70));
        let (seq, ts) = d.send.expect("the switch");
        assert_eq!(seq, 504);
        // 4 ms after the last packet sent, at 90 kHz.
        assert_eq!(ts, 15_000 + 360);
        assert_eq!(
            r.decide(&t, &viewer, &inc(Layer::Low, false, 73, 3_300, 103))
                .send,
            Some((505, 15_360 + 3_000))
        );
        assert_eq!(
            r.decide(&t, &viewer, &inc(Layer::High, false, 504, 18_000, 99))
                .send,
            None
        );
    }

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

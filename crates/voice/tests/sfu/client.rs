//! A webrtc-rs client peer for the tests: publishes synthetic Opus and VP8 (optionally
//! simulcast), receives what the SFU sends, and negotiates the way the crate docs tell a
//! browser to (first offer from the client, impolite on glare).

use bytes::Bytes;
use hearth_voice::{Joined, Participant, SfuEvent, Signal, TrackKind, TrackLabel};
use parking_lot::Mutex;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::sdp::extmap::{AUDIO_LEVEL_URI, SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

/// What the client received on one track (by msid track id).
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub packets: usize,
    /// (sequence number, layer byte from the payload, keyframe) of each packet, in arrival
    /// order.
    pub seqs: Vec<(u16, u8, bool)>,
    pub ssrcs: Vec<u32>,
}

#[derive(Default)]
pub struct Shared {
    pub received: Mutex<HashMap<String, Received>>,
    pub events: Mutex<Vec<SfuEvent>>,
    pub offers_seen: Mutex<Vec<String>>,
    pub errors: Mutex<Vec<String>>,
    pub remotes: Mutex<HashMap<String, Arc<dyn TrackRemote>>>,
    /// Keyframe requests (PLI, FIR) the SFU sent about what this client publishes.
    pub keyframe_requests: AtomicUsize,
}

struct Handler {
    shared: Arc<Shared>,
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let id = track.track_id().await;
            shared.remotes.lock().insert(id.clone(), track.clone());
            while let Some(evt) = track.poll().await {
                match evt {
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        let mut r = shared.received.lock();
                        let e = r.entry(id.clone()).or_default();
                        e.packets += 1;
                        let key =
                            id.contains("-audio-") || p.payload.get(1).is_some_and(|b| b & 1 == 0);
                        e.seqs.push((
                            p.header.sequence_number,
                            p.payload.get(2).copied().unwrap_or(0),
                            key,
                        ));
                        if !e.ssrcs.contains(&p.header.ssrc) {
                            e.ssrcs.push(p.header.ssrc);
                        }
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// What to publish.
#[derive(Clone, Copy, Default)]
pub struct Publish {
    pub audio: bool,
    pub video: bool,
    /// Three rids (q, h, f) on the camera.
    pub simulcast: bool,
    /// A second video track, labelled screen.
    pub screen: bool,
    /// H.264 instead of VP8 for the camera.
    pub h264: bool,
}

struct Outgoing {
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    /// (rid, ssrc, layer index).
    streams: Vec<(String, u32, u8)>,
    kind: RtpCodecKind,
    name: &'static str,
}

pub struct Client {
    pub pc: Arc<dyn PeerConnection>,
    pub participant: Arc<Participant>,
    pub shared: Arc<Shared>,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    neg: Arc<tokio::sync::Mutex<bool>>,
    outgoing: Vec<Outgoing>,
    pub audio_level: Arc<AtomicU8>,
    sending: Arc<AtomicBool>,
    started: usize,
}

impl Client {
    /// Makes the client's peer connection for a join (not yet negotiated).
    pub async fn new(joined: Joined, publish: Publish) -> Client {
        let Joined {
            participant,
            events,
            ..
        } = joined;
        let participant = Arc::new(participant);
        let shared = Arc::new(Shared::default());
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let pc = hearth_voice::peer::client_hearing_feedback(
            Arc::new(Handler {
                shared: shared.clone(),
                state: state_tx,
                gathered: gathered_tx,
            }),
            "127.0.0.1:0",
        )
        .await
        .expect("client peer connection");
        let mut client = Client {
            pc,
            participant,
            shared,
            state,
            gathered,
            neg: Arc::new(tokio::sync::Mutex::new(false)),
            outgoing: Vec::new(),
            audio_level: Arc::new(AtomicU8::new(127)),
            sending: Arc::new(AtomicBool::new(true)),
            started: 0,
        };
        if publish.audio {
            client
                .add_track(
                    RtpCodecKind::Audio,
                    hearth_voice::peer::opus(),
                    &[],
                    "audio",
                )
                .await;
        }
        if publish.video {
            let rids: &[&str] = if publish.simulcast {
                &["q", "h", "f"]
            } else {
                &[]
            };
            let codec = if publish.h264 {
                hearth_voice::peer::h264()
            } else {
                hearth_voice::peer::vp8()
            };
            client
                .add_track(RtpCodecKind::Video, codec, rids, "camera")
                .await;
        }
        if publish.screen {
            client
                .add_track(
                    RtpCodecKind::Video,
                    hearth_voice::peer::vp8(),
                    &[],
                    "screen",
                )
                .await;
        }
        if !publish.audio && !publish.video && !publish.screen {
            hearth_voice::peer::add_recvonly(&client.pc, RtpCodecKind::Audio)
                .await
                .expect("recvonly transceiver");
        }
        tokio::spawn(pump(
            client.pc.clone(),
            Arc::downgrade(&client.participant),
            events,
            client.shared.clone(),
            client.neg.clone(),
        ));
        client
    }

    pub async fn add_screen(&mut self) {
        self.add_track(
            RtpCodecKind::Video,
            hearth_voice::peer::vp8(),
            &[],
            "screen",
        )
        .await;
    }

    async fn add_track(
        &mut self,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
        rids: &[&str],
        name: &'static str,
    ) {
        let sent = hearth_voice::peer::SendTrack::add(&self.pc, kind, codec, rids, name)
            .await
            .expect("add transceiver");
        // One encoding is the full layer; simulcast rids are low to high.
        let layers: Vec<(String, u32, u8)> = if rids.is_empty() {
            vec![(String::new(), sent.encodings[0].1, 2)]
        } else {
            sent.encodings
                .iter()
                .enumerate()
                .map(|(i, (rid, ssrc))| (rid.clone(), *ssrc, i as u8))
                .collect()
        };
        let (track, sender) = (sent.track, sent.sender);
        self.outgoing.push(Outgoing {
            track,
            sender,
            streams: layers,
            kind,
            name,
        });
    }

    /// The client's offer (first or renegotiation): waits for gathering, so the offer
    /// carries its candidates.
    pub async fn offer(&mut self) -> Result<(), hearth_voice::VoiceError> {
        let sdp = self.prepare_offer().await;
        self.send_offer(sdp).await
    }

    /// Sets the client's offer locally (so an SFU offer arriving now is ignored, as an
    /// impolite peer does) without sending it yet.
    pub async fn prepare_offer(&mut self) -> String {
        {
            let mut neg = self.neg.lock().await;
            let offer = self.pc.create_offer(None).await.expect("create offer");
            self.pc
                .set_local_description(offer)
                .await
                .expect("set local offer");
            *neg = true;
            let _ =
                tokio::time::timeout(Duration::from_secs(3), self.gathered.wait_for(|g| *g)).await;
            self.pc
                .local_description()
                .await
                .expect("local description")
                .sdp
        }
    }

    /// Holds the client's negotiation: SFU answers and offers wait until the guard drops
    /// (a client slow to apply them).
    pub async fn hold_negotiation(&self) -> tokio::sync::OwnedMutexGuard<bool> {
        self.neg.clone().lock_owned().await
    }

    pub async fn send_offer(&mut self, sdp: String) -> Result<(), hearth_voice::VoiceError> {
        // Label the screen track by its transceiver's mid.
        let mut labels = Vec::new();
        if let Some(screen) = self.outgoing.iter().find(|o| o.name == "screen") {
            for t in self.pc.get_transceivers().await {
                if t.sender()
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| Arc::ptr_eq(&s, &screen.sender))
                    && let Ok(Some(mid)) = t.mid().await
                {
                    labels.push(TrackLabel {
                        mid,
                        kind: TrackKind::Screen,
                    });
                }
            }
        }
        let r = self
            .participant
            .signal(Signal::Offer {
                sdp,
                tracks: labels,
            })
            .await;
        if r.is_err() {
            // Refused: take our offer back.
            let mut neg = self.neg.lock().await;
            let _ = self
                .pc
                .set_local_description(RTCSessionDescription::rollback(None).expect("rollback"))
                .await;
            *neg = false;
        }
        r
    }

    pub async fn wait_connected(&mut self, within: Duration) -> bool {
        tokio::time::timeout(
            within,
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Sends 50 audio packets a second and 30 video frames a second (one packet each, a
    /// keyframe every 15th, the layer index in payload byte 2) until stopped.
    pub async fn start_sending(&mut self) {
        let start = self.started;
        self.started = self.outgoing.len();
        for o in &self.outgoing[start..] {
            let params = o.sender.get_parameters().await.expect("sender parameters");
            let pt = params
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.payload_type)
                .expect("negotiated codec");
            let is_h264 = params
                .rtp_parameters
                .codecs
                .first()
                .is_some_and(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/H264"));
            let ext = |uri: &str| {
                params
                    .rtp_parameters
                    .header_extensions
                    .iter()
                    .find(|h| h.uri == uri)
                    .map(|h| h.id as u8)
            };
            let (mid_id, rid_id, level_id) = (
                ext(SDES_MID_URI),
                ext(SDES_RTP_STREAM_ID_URI),
                ext(AUDIO_LEVEL_URI),
            );
            let mid = self
                .pc
                .get_transceivers()
                .await
                .into_iter()
                .map(|t| async move {
                    (
                        t.sender().await.ok().flatten(),
                        t.mid().await.ok().flatten(),
                    )
                });
            let mut mid_value = None;
            for f in mid {
                let (s, m) = f.await;
                if s.is_some_and(|s| Arc::ptr_eq(&s, &o.sender)) {
                    mid_value = m;
                }
            }
            let track = o.track.clone();
            let streams = o.streams.clone();
            let audio = o.kind == RtpCodecKind::Audio;
            let level = self.audio_level.clone();
            let sending = self.sending.clone();
            tokio::spawn(count_keyframe_requests(
                track.clone(),
                self.shared.clone(),
                sending.clone(),
            ));
            tokio::spawn(async move {
                let period = if audio {
                    Duration::from_millis(20)
                } else {
                    Duration::from_millis(33)
                };
                let mut tick = tokio::time::interval(period);
                let mut seq: Vec<u16> = streams.iter().map(|_| rand::random()).collect();
                let mut n: u32 = 0;
                loop {
                    tick.tick().await;
                    if !sending.load(Ordering::Relaxed) {
                        return;
                    }
                    for (i, (rid, ssrc, layer)) in streams.iter().enumerate() {
                        let mut header = rtp::header::Header {
                            version: 2,
                            payload_type: pt,
                            sequence_number: seq[i],
                            timestamp: n.wrapping_mul(if audio { 960 } else { 3000 }),
                            ssrc: *ssrc,
                            marker: !audio,
                            ..Default::default()
                        };
                        seq[i] = seq[i].wrapping_add(1);
                        if let (Some(id), Some(m)) = (mid_id, &mid_value) {
                            let _ = header.set_extension(id, Bytes::from(m.clone().into_bytes()));
                        }
                        if let Some(id) = rid_id
                            && !rid.is_empty()
                        {
                            let _ = header.set_extension(id, Bytes::from(rid.clone().into_bytes()));
                        }
                        let payload = if audio {
                            if let Some(id) = level_id {
                                let _ = header.set_extension(
                                    id,
                                    Bytes::from(vec![0x80 | level.load(Ordering::Relaxed)]),
                                );
                            }
                            // An Opus TOC for a 20 ms CELT frame, then filler.
                            Bytes::from(vec![0xfc, 0xff, *layer, 0xfe])
                        } else if is_h264 {
                            // A single NAL unit: IDR slice (5) or non-IDR slice (1); the byte
                            // after it says keyframe like the VP8 payload header's P bit.
                            let key = n.is_multiple_of(15);
                            Bytes::from(vec![
                                if key { 0x65 } else { 0x41 },
                                if key { 0x00 } else { 0x01 },
                                *layer,
                                0x88,
                            ])
                        } else {
                            let key = n.is_multiple_of(15);
                            // VP8 descriptor (S=1, PID=0), payload header (P bit), layer.
                            Bytes::from(vec![
                                0x10,
                                if key { 0x00 } else { 0x01 },
                                *layer,
                                0x9d,
                                0x01,
                                0x2a,
                            ])
                        };
                        // Not bound yet (negotiation under way): skip this one.
                        let _ = track.write_rtp(rtp::Packet { header, payload }).await;
                    }
                    n = n.wrapping_add(1);
                }
            });
        }
    }

    pub fn received(&self) -> HashMap<String, Received> {
        self.shared.received.lock().clone()
    }

    /// Packets received on tracks whose id starts with `<publisher>-<kind>`.
    pub fn count(&self, publisher: u64, kind: &str) -> usize {
        let prefix = format!("{publisher}-{kind}-");
        self.shared
            .received
            .lock()
            .iter()
            .filter(|(id, _)| id.starts_with(&prefix))
            .map(|(_, r)| r.packets)
            .sum()
    }

    pub fn left(&self) -> Option<hearth_voice::LeaveReason> {
        self.shared.events.lock().iter().find_map(|e| match e {
            SfuEvent::Left(r) => Some(r.clone()),
            _ => None,
        })
    }

    /// Sends a PLI for the received track whose id starts with `prefix`.
    pub async fn send_pli(&self, prefix: &str) -> bool {
        let remote = self
            .shared
            .remotes
            .lock()
            .iter()
            .find(|(id, _)| id.starts_with(prefix))
            .map(|(_, t)| t.clone());
        let Some(remote) = remote else { return false };
        let ssrc = remote.ssrcs().await.first().copied().unwrap_or(0);
        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        remote.write_rtcp(vec![Box::new(pli)]).await.is_ok()
    }

    pub fn events(&self) -> Vec<SfuEvent> {
        self.shared.events.lock().clone()
    }

    pub async fn close(&self) {
        self.sending.store(false, Ordering::Relaxed);
        let _ = self.pc.close().await;
    }
}

/// Reads the RTCP the SFU sends about a published track (the track's queue must be
/// drained) and counts its keyframe requests, until the client stops sending.
async fn count_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    shared: Arc<Shared>,
    sending: Arc<AtomicBool>,
) {
    while sending.load(Ordering::Relaxed) {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                let asks = hearth_voice::peer::keyframe_requests(&packets).len();
                shared.keyframe_requests.fetch_add(asks, Ordering::Relaxed);
            }
            Some(_) => {}
            // Not bound (between negotiations).
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Applies the SFU's events to the client's peer connection.
async fn pump(
    pc: Arc<dyn PeerConnection>,
    participant: std::sync::Weak<Participant>,
    mut events: mpsc::Receiver<SfuEvent>,
    shared: Arc<Shared>,
    neg: Arc<tokio::sync::Mutex<bool>>,
) {
    while let Some(ev) = events.recv().await {
        match &ev {
            SfuEvent::Answer { sdp } => {
                let mut have_offer = neg.lock().await;
                let desc = RTCSessionDescription::answer(sdp.clone()).expect("answer parses");
                pc.set_remote_description(desc)
                    .await
                    .expect("apply SFU answer");
                *have_offer = false;
            }
            SfuEvent::Offer { sdp } => {
                shared.offers_seen.lock().push(sdp.clone());
                let answer = {
                    let have_offer = neg.lock().await;
                    if *have_offer {
                        // Impolite: our own offer wins; the SFU offers again.
                        shared.events.lock().push(ev.clone());
                        continue;
                    }
                    let desc = RTCSessionDescription::offer(sdp.clone()).expect("offer parses");
                    pc.set_remote_description(desc)
                        .await
                        .expect("apply SFU offer");
                    let answer = pc.create_answer(None).await.expect("create answer");
                    pc.set_local_description(answer)
                        .await
                        .expect("set local answer");
                    pc.local_description().await.expect("local answer").sdp
                };
                if let Some(p) = participant.upgrade() {
                    let _ = p.signal(Signal::Answer { sdp: answer }).await;
                }
            }
            SfuEvent::Candidate(c) => {
                let _ = pc
                    .add_ice_candidate(RTCIceCandidateInit {
                        candidate: c.candidate.clone(),
                        sdp_mid: c.sdp_mid.clone(),
                        sdp_mline_index: c.sdp_mline_index,
                        username_fragment: c.username_fragment.clone(),
                        ..Default::default()
                    })
                    .await;
            }
            _ => {}
        }
        shared.events.lock().push(ev);
    }
}

//! A client-side peer on the same stack, for the project's tests and load
//! generator: a webrtc-rs connection configured as a
//! browser's would be for this SFU (Opus, VP8, H.264, the audio-level
//! extension, NACK/RTCP/TWCC interceptors, loopback candidates allowed), and
//! helpers to publish a track and answer the SFU. Not used by the SFU.

use std::sync::Arc;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::IceCandidate;
use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::time::Instant;

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.into(),
        rtcp_feedback: vec![],
    }
}

pub fn opus() -> RTCRtpCodec {
    codec("audio/opus", 48_000, 2, "minptime=10;useinbandfec=1")
}

pub fn vp8() -> RTCRtpCodec {
    codec("video/VP8", 90_000, 0, "")
}

pub fn h264() -> RTCRtpCodec {
    codec(
        "video/H264",
        90_000,
        0,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    )
}

/// A peer connection bound to loopback, its events going to `handler`.
pub async fn client(
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, String> {
    client_on(handler, "127.0.0.1:0").await
}

/// [`client`] with its UDP socket bound to `udp_addr` (e.g. another
/// loopback address, `127.0.0.3:0`), for servers that cannot reach
/// 127.0.0.1 from where they bind.
pub async fn client_on(
    handler: Arc<dyn PeerConnectionEventHandler>,
    udp_addr: &str,
) -> Result<Arc<dyn PeerConnection>, String> {
    build(handler, udp_addr, false).await
}

/// [`client_on`], and the keyframe requests (PLI, FIR) and REMB the remote sends about
/// what this peer publishes reach the application, as `TrackLocalEvent::OnRtcpPacket` from
/// each sent track's `poll`. webrtc-rs stops inbound RTCP in the interceptor chain
/// otherwise. A caller must drain `poll` on every track it publishes: each track's event
/// queue holds 256, and webrtc-rs logs every packet dropped past that.
pub async fn client_hearing_feedback(
    handler: Arc<dyn PeerConnectionEventHandler>,
    udp_addr: &str,
) -> Result<Arc<dyn PeerConnection>, String> {
    build(handler, udp_addr, true).await
}

async fn build(
    handler: Arc<dyn PeerConnectionEventHandler>,
    udp_addr: &str,
    feedback: bool,
) -> Result<Arc<dyn PeerConnection>, String> {
    let mut me = MediaEngine::default();
    me.register_default_codecs().map_err(|e| e.to_string())?;
    me.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.into(),
        },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(|e| e.to_string())?;
    let mut registry =
        register_default_interceptors(Registry::new(), &mut me).map_err(|e| e.to_string())?;
    if feedback {
        registry = feedback_to_app(registry);
    }
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_include_loopback_candidate(true)
                .build(),
        )
        .with_handler(handler)
        .with_udp_addrs(vec![udp_addr.to_owned()])
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(pc))
}

/// The SSRCs that RTCP `packets` ask a keyframe of (each PLI's media SSRC, each FIR
/// entry's), for a peer that answers keyframe requests ([`client_hearing_feedback`]).
pub fn keyframe_requests(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<u32> {
    let mut ssrcs = Vec::new();
    for p in packets {
        let any = p.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            ssrcs.push(pli.media_ssrc);
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            ssrcs.extend(fir.fir.iter().map(|e| e.ssrc));
        }
    }
    ssrcs
}

/// A track the peer sends: where to write RTP, the SSRC of each encoding
/// (one, or three for simulcast rids), and its sender.
pub struct SendTrack {
    pub track: Arc<TrackLocalStaticRTP>,
    /// (rid, ssrc), low layer first.
    pub encodings: Vec<(String, u32)>,
    pub sender: Arc<dyn RtpSender>,
}

impl SendTrack {
    /// Adds a `sendonly` transceiver for a new track (`rids` empty: one
    /// encoding).
    pub async fn add(
        pc: &Arc<dyn PeerConnection>,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
        rids: &[&str],
        name: &str,
    ) -> Result<SendTrack, String> {
        let encodings: Vec<(String, u32)> = if rids.is_empty() {
            vec![(String::new(), rand::random())]
        } else {
            rids.iter()
                .map(|r| (r.to_string(), rand::random()))
                .collect()
        };
        let params = encodings
            .iter()
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.clone(),
                    ssrc: Some(*ssrc),
                    ..Default::default()
                },
                active: true,
                codec: codec.clone(),
                ..Default::default()
            })
            .collect();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "client-stream".to_owned(),
            format!("client-{name}"),
            format!("client-{name}"),
            kind,
            params,
        )));
        let tr = pc
            .add_transceiver_from_track(
                track.clone() as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await
            .map_err(|e| e.to_string())?;
        let sender = tr
            .sender()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("a transceiver without a sender")?;
        Ok(SendTrack {
            track,
            encodings,
            sender,
        })
    }

    /// The negotiated payload type and the audio-level extension's id
    /// (`None` until negotiated): what each packet must carry, since the
    /// track writes packets as given.
    pub async fn negotiated(&self) -> Option<(u8, Option<u8>)> {
        let params = self.sender.get_parameters().await.ok()?;
        let pt = params.rtp_parameters.codecs.first()?.payload_type;
        let level = params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|h| h.uri == AUDIO_LEVEL_URI)
            .map(|h| h.id as u8);
        Some((pt, level))
    }
}

/// Adds a `recvonly` m-line of `kind`: something to receive on before
/// this peer publishes anything, or one per remote track expected.
pub async fn add_recvonly(pc: &Arc<dyn PeerConnection>, kind: RtpCodecKind) -> Result<(), String> {
    pc.add_transceiver_from_kind(
        kind,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            streams: vec![],
            send_encodings: vec![],
        }),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Applies the SFU's offer and returns the answer's SDP.
pub async fn answer(pc: &Arc<dyn PeerConnection>, offer_sdp: String) -> Result<String, String> {
    let desc = RTCSessionDescription::offer(offer_sdp).map_err(|e| e.to_string())?;
    pc.set_remote_description(desc)
        .await
        .map_err(|e| e.to_string())?;
    let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pc.local_description().await.ok_or("no local answer")?.sdp)
}

/// Applies the SFU's answer to this peer's offer.
pub async fn accept(pc: &Arc<dyn PeerConnection>, answer_sdp: String) -> Result<(), String> {
    let desc = RTCSessionDescription::answer(answer_sdp).map_err(|e| e.to_string())?;
    pc.set_remote_description(desc)
        .await
        .map_err(|e| e.to_string())
}

/// Adds one of the SFU's trickled candidates.
pub async fn add_candidate(pc: &Arc<dyn PeerConnection>, c: IceCandidate) {
    let _ = pc
        .add_ice_candidate(RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: c.username_fragment,
            ..Default::default()
        })
        .await;
}

/// Adds [`FeedbackToApp`] nearest the application (the chain stops inbound RTCP otherwise).
fn feedback_to_app(registry: Registry) -> Registry {
    registry.with(Slot::from(14_000), FeedbackToApp::default())
}

/// Marks PLI, FIR and REMB for delivery to the application (the sender's `TrackLocal`).
/// On the client peer ([`client_hearing_feedback`]), whose cameras answer keyframe requests
/// as a browser's encoder does.
#[derive(Default)]
struct FeedbackToApp {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

fn wanted(p: &dyn rtc::rtcp::Packet) -> bool {
    let a = p.as_any();
    a.is::<PictureLossIndication>()
        || a.is::<FullIntraRequest>()
        || a.is::<ReceiverEstimatedMaximumBitrate>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let keep: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| wanted(p.as_ref()))
                .cloned()
                .collect();
            if keep.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(keep);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for FeedbackToApp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

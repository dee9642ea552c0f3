//! One participant's session: the task that owns its `RTCPeerConnection` and serializes
//! everything done to it — client signals, subscriptions, connection state — so
//! negotiation never interleaves.
//!
//! Negotiation (perfect negotiation, the SFU polite): the client makes the first offer; the
//! SFU answers. Whenever the SFU's subscriptions change it offers, once the previous
//! exchange is complete. A client offer arriving while an SFU offer is outstanding (glare)
//! wins: the SFU rolls its offer back, answers, and offers again afterwards.

use crate::engine;
use crate::error::VoiceError;
use crate::forward::{self, ForwarderSpec, OutParams, Published, Subscription};
use crate::ports::PortLease;
use crate::sdp::{self, OfferInfo};
use crate::sfu::{Member, SfuInner};
use crate::types::{IceCandidate, LeaveReason, SfuEvent, Signal, TrackKind, TrackLabel};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::{RtpSender, RtpTransceiver};

/// Longest any one webrtc-rs call may take before the session gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) enum Command {
    Signal(Signal, oneshot::Sender<Result<(), VoiceError>>),
    LocalCandidate(IceCandidate),
    Connection(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
    Subscribe(Arc<Published>),
    Unsubscribe(u64),
    Close(LeaveReason),
}

struct Handler {
    cmd: mpsc::UnboundedSender<Command>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(c) = event.candidate.to_json() {
            let _ = self.cmd.send(Command::LocalCandidate(IceCandidate {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_mline_index,
                username_fragment: c.username_fragment,
            }));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.cmd.send(Command::Connection(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.cmd.send(Command::Track(track));
    }
}

struct SubEntry {
    published: Arc<Published>,
    sub: Arc<Subscription>,
    sender: Arc<dyn RtpSender>,
    /// Its m-section: forwarding starts once an exchange has negotiated it.
    transceiver: Arc<dyn RtpTransceiver>,
    feedback: Option<watch::Sender<bool>>,
}

struct Session {
    sfu: Arc<SfuInner>,
    member: Arc<Member>,
    pc: Arc<dyn PeerConnection>,
    _port: PortLease,
    subs: HashMap<u64, SubEntry>,
    offer: OfferInfo,
    /// Kinds this participant publishes, each with its forwarder's stop signal.
    published: Vec<(TrackKind, watch::Sender<bool>)>,
    have_local_offer: bool,
    needs_offer: bool,
    answered: bool,
    connected: bool,
    closing: watch::Sender<bool>,
}

async fn bounded<T, E: std::fmt::Display>(
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, VoiceError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(r) => r.map_err(VoiceError::webrtc),
        Err(_) => Err(VoiceError::Webrtc("timed out".into())),
    }
}

/// Makes the participant's peer connection (on a port of the range) and starts its session.
pub(crate) async fn start(
    sfu: Arc<SfuInner>,
    member: Arc<Member>,
    rx: mpsc::UnboundedReceiver<Command>,
) -> Result<(), VoiceError> {
    let (pc, port) = build_peer_connection(&sfu, &member).await?;
    sfu.stats.peer_connections.fetch_add(1, Ordering::Relaxed);
    let (closing, _) = watch::channel(false);
    let session = Session {
        sfu: sfu.clone(),
        member,
        pc,
        _port: port,
        subs: HashMap::new(),
        offer: OfferInfo::default(),
        published: Vec::new(),
        have_local_offer: false,
        needs_offer: false,
        answered: false,
        connected: false,
        closing,
    };
    sfu.tasks.spawn(session.run(rx));
    Ok(())
}

async fn build_peer_connection(
    sfu: &SfuInner,
    member: &Arc<Member>,
) -> Result<(Arc<dyn PeerConnection>, PortLease), VoiceError> {
    let cfg = &sfu.cfg;
    let mut tried = Vec::new();
    // A port of the range may be taken by another process: try a few.
    for _ in 0..8 {
        let lease = sfu.ports.lease(&tried).ok_or(VoiceError::NoPorts)?;
        let addrs: Vec<String> = cfg
            .host_addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, lease.port).to_string())
            .collect();
        let (media, registry) = engine::media_and_interceptors(cfg, member.downlink.clone())?;
        let built = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(engine::settings(cfg))
            .with_handler(Arc::new(Handler {
                cmd: member.cmd.clone(),
            }))
            .with_udp_addrs(addrs)
            .build()
            .await;
        match built {
            Ok(pc) => return Ok((Arc::new(pc), lease)),
            Err(e) if lease.port != 0 => {
                tracing::debug!(port = lease.port, error = %e, "port unusable, trying another");
                tried.push(lease.port);
            }
            Err(e) => return Err(VoiceError::webrtc(e)),
        }
    }
    Err(VoiceError::NoPorts)
}

impl Session {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let deadline = tokio::time::sleep(self.sfu.cfg.limits.ice_connect_timeout);
        tokio::pin!(deadline);
        let reason = loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => break LeaveReason::Left,
                    Some(cmd) => if let Some(reason) = self.handle(cmd).await {
                        break reason;
                    },
                },
                () = &mut deadline, if !self.connected => break LeaveReason::IceTimeout,
            }
        };
        drop(rx);
        self.shutdown(reason).await;
    }

    async fn handle(&mut self, cmd: Command) -> Option<LeaveReason> {
        match cmd {
            Command::Signal(signal, reply) => {
                let r = self.on_signal(signal).await;
                let _ = reply.send(r);
            }
            Command::LocalCandidate(mut c) => {
                c.candidate = engine::announce(&self.sfu.cfg, &c.candidate);
                // webrtc-rs names no mid (""); browsers want the m-line index alone then.
                if c.sdp_mid.as_deref() == Some("") {
                    c.sdp_mid = None;
                }
                self.member.events.send(SfuEvent::Candidate(c));
            }
            Command::Connection(state) => match state {
                RTCPeerConnectionState::Connected => self.connected = true,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    return Some(LeaveReason::ConnectionFailed);
                }
                _ => {}
            },
            Command::Track(remote) => self.on_track(remote).await,
            Command::Subscribe(p) => {
                if let Err(e) = self.subscribe(p).await {
                    tracing::warn!(participant = %self.member.id, error = %e, "subscription failed");
                }
            }
            Command::Unsubscribe(id) => self.unsubscribe(id).await,
            Command::Close(reason) => return Some(reason),
        }
        None
    }

    async fn on_signal(&mut self, signal: Signal) -> Result<(), VoiceError> {
        match signal {
            Signal::Offer { sdp, tracks } => self.on_offer(sdp, &tracks).await,
            Signal::Answer { sdp } => self.on_answer(sdp).await,
            Signal::Candidate(c) => {
                if c.candidate.is_empty() {
                    return Ok(()); // end of candidates
                }
                if c.candidate.len() > 1024 {
                    return Err(VoiceError::BadCandidate("too long".into()));
                }
                let init = RTCIceCandidateInit {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_mline_index,
                    username_fragment: c.username_fragment,
                    ..Default::default()
                };
                match tokio::time::timeout(CALL_TIMEOUT, self.pc.add_ice_candidate(init)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(VoiceError::BadCandidate(e.to_string())),
                    Err(_) => Err(VoiceError::Webrtc("timed out".into())),
                }
            }
        }
    }

    async fn on_offer(&mut self, sdp: String, labels: &[TrackLabel]) -> Result<(), VoiceError> {
        let limits = &self.sfu.cfg.limits;
        sdp::check_size(&sdp, limits)?;
        let parsed = sdp::parse(&sdp)?;
        let info = sdp::inspect_offer(&parsed, labels, limits)?;
        let desc = RTCSessionDescription::offer(sdp)
            .map_err(|e| VoiceError::MalformedSdp(e.to_string()))?;
        if self.have_local_offer {
            // Glare: the client's offer wins; ours goes again afterwards.
            bounded(self.pc.set_local_description(
                RTCSessionDescription::rollback(None).map_err(VoiceError::webrtc)?,
            ))
            .await?;
            self.have_local_offer = false;
            self.needs_offer = true;
        }
        if let Err(e) = bounded(self.pc.set_remote_description(desc)).await {
            return Err(VoiceError::MalformedSdp(e.to_string()));
        }
        let answer = async {
            let answer = bounded(self.pc.create_answer(None)).await?;
            bounded(self.pc.set_local_description(answer)).await?;
            self.pc
                .local_description()
                .await
                .ok_or_else(|| VoiceError::Webrtc("no local description".into()))
        }
        .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                // Back to where we were, so the client can try again.
                if let Ok(rb) = RTCSessionDescription::rollback(None) {
                    let _ = bounded(self.pc.set_remote_description(rb)).await;
                }
                return Err(e);
            }
        };
        // Publications whose m-section no longer sends (stopped, inactive, recvonly) end:
        // their forwarders stop and unpublish, and the kind may be published again.
        self.published.retain(|(kind, stop)| {
            let still = info.sending.iter().any(|s| s.kind == *kind);
            if !still {
                let _ = stop.send(true);
            }
            still
        });
        self.offer = info;
        self.answered = true;
        self.member.events.send(SfuEvent::Answer {
            sdp: engine::announce_sdp(&self.sfu.cfg, answer.sdp),
        });
        self.after_negotiation().await;
        Ok(())
    }

    async fn on_answer(&mut self, sdp: String) -> Result<(), VoiceError> {
        if !self.have_local_offer {
            return Err(VoiceError::NoPendingOffer);
        }
        sdp::check_size(&sdp, &self.sfu.cfg.limits)?;
        sdp::parse(&sdp)?;
        let desc = RTCSessionDescription::answer(sdp)
            .map_err(|e| VoiceError::MalformedSdp(e.to_string()))?;
        if let Err(e) = bounded(self.pc.set_remote_description(desc)).await {
            // Withdraw our offer and make a fresh one: the client answers that instead.
            if let Ok(rb) = RTCSessionDescription::rollback(None) {
                let _ = bounded(self.pc.set_local_description(rb)).await;
            }
            self.have_local_offer = false;
            self.needs_offer = true;
            self.maybe_offer().await;
            return Err(VoiceError::MalformedSdp(e.to_string()));
        }
        self.have_local_offer = false;
        self.after_negotiation().await;
        Ok(())
    }

    /// After an exchange completes: learn what each subscription's leg negotiated, start
    /// its feedback reader, and offer again if subscriptions changed meanwhile.
    ///
    /// Only legs this or an earlier exchange negotiated: a subscription whose offer was
    /// rolled back in glare has a sender but no m-section the client knows yet, and what
    /// the forwarder wrote to it would be lost, the keyframe it starts at included, until
    /// the next offer is answered. Left unready, it starts at a keyframe after that.
    async fn after_negotiation(&mut self) {
        for e in self.subs.values_mut() {
            if e.sub.params.lock().is_some() {
                continue;
            }
            let negotiated = matches!(
                bounded(e.transceiver.current_direction()).await,
                Ok(RTCRtpTransceiverDirection::Sendonly | RTCRtpTransceiverDirection::Sendrecv)
            );
            if !negotiated {
                continue;
            }
            let Ok(params) = bounded(e.sender.get_parameters()).await else {
                continue;
            };
            let codec = params
                .rtp_parameters
                .codecs
                .iter()
                .filter(|c| {
                    c.rtp_codec
                        .mime_type
                        .eq_ignore_ascii_case(&e.published.codec.mime_type)
                })
                .max_by_key(|c| c.rtp_codec.sdp_fmtp_line == e.published.codec.sdp_fmtp_line);
            let Some(codec) = codec else { continue };
            let audio_level_ext = params
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|h| h.uri == AUDIO_LEVEL_URI)
                .and_then(|h| u8::try_from(h.id).ok());
            *e.sub.params.lock() = Some(OutParams {
                payload_type: codec.payload_type,
                audio_level_ext,
            });
            if e.feedback.is_none() {
                let (tx, rx) = watch::channel(false);
                self.sfu.tasks.spawn(forward::run_feedback(
                    e.published.clone(),
                    e.sub.clone(),
                    rx,
                ));
                e.feedback = Some(tx);
            }
        }
        self.maybe_offer().await;
    }

    async fn maybe_offer(&mut self) {
        if !self.needs_offer || !self.answered || self.have_local_offer {
            return;
        }
        let offer = async {
            let offer = bounded(self.pc.create_offer(None)).await?;
            bounded(self.pc.set_local_description(offer)).await?;
            self.pc
                .local_description()
                .await
                .ok_or_else(|| VoiceError::Webrtc("no local description".into()))
        }
        .await;
        match offer {
            Ok(offer) => {
                self.needs_offer = false;
                self.have_local_offer = true;
                self.member.events.send(SfuEvent::Offer {
                    sdp: engine::announce_sdp(&self.sfu.cfg, offer.sdp),
                });
            }
            Err(e) => tracing::warn!(participant = %self.member.id, error = %e, "could not offer"),
        }
    }

    async fn subscribe(&mut self, p: Arc<Published>) -> Result<(), VoiceError> {
        if Arc::ptr_eq(&p.publisher, &self.member) || self.subs.contains_key(&p.id) {
            return Ok(());
        }
        let ssrc = rand::random::<u32>();
        let kind = if p.kind.is_audio() {
            RtpCodecKind::Audio
        } else {
            RtpCodecKind::Video
        };
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            p.stream_id.clone(),
            p.track_id.clone(),
            p.track_id.clone(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                active: true,
                codec: p.codec.clone(),
                ..Default::default()
            }],
        )));
        let transceiver = bounded(self.pc.add_transceiver_from_track(
            track.clone(),
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: Vec::new(),
                send_encodings: Vec::new(),
            }),
        ))
        .await?;
        let sender = bounded(transceiver.sender())
            .await?
            .ok_or_else(|| VoiceError::Webrtc("transceiver without sender".into()))?;
        let sub = Arc::new(Subscription::new(self.member.clone(), track, ssrc));
        p.add_subscriber(sub.clone());
        self.member.events.send(SfuEvent::TrackPublished {
            participant: p.publisher.id,
            kind: p.kind,
            stream_id: p.stream_id.clone(),
            track_id: p.track_id.clone(),
        });
        self.subs.insert(
            p.id,
            SubEntry {
                published: p,
                sub,
                sender,
                transceiver,
                feedback: None,
            },
        );
        self.needs_offer = true;
        self.maybe_offer().await;
        Ok(())
    }

    async fn unsubscribe(&mut self, id: u64) {
        let Some(e) = self.subs.remove(&id) else {
            return;
        };
        if let Some(stop) = e.feedback {
            let _ = stop.send(true);
        }
        e.published.remove_subscriber(&e.sub);
        if let Err(err) = bounded(self.pc.remove_track(&e.sender)).await {
            tracing::debug!(participant = %self.member.id, error = %err, "remove_track failed");
        }
        self.member.events.send(SfuEvent::TrackUnpublished {
            participant: e.published.publisher.id,
            kind: e.published.kind,
            track_id: e.published.track_id.clone(),
        });
        self.needs_offer = true;
        self.maybe_offer().await;
    }

    fn publishes(&self, kind: TrackKind) -> bool {
        self.published.iter().any(|(k, _)| *k == kind)
    }

    async fn on_track(&mut self, remote: Arc<dyn TrackRemote>) {
        let is_audio = remote.kind().await == RtpCodecKind::Audio;
        let track_id = remote.track_id().await;
        let by_id = self
            .offer
            .sending
            .iter()
            .find(|s| s.track_id.as_deref() == Some(track_id.as_str()));
        let sending = by_id.or_else(|| {
            self.offer
                .sending
                .iter()
                .find(|s| s.kind.is_audio() == is_audio && !self.publishes(s.kind))
        });
        let (kind, rids) = match sending {
            Some(s) => (s.kind, s.rids.clone()),
            None if is_audio => (TrackKind::Audio, Vec::new()),
            None => (TrackKind::Camera, Vec::new()),
        };
        if self.publishes(kind) {
            tracing::warn!(participant = %self.member.id, ?kind, "second track of a kind ignored");
            return;
        }
        let (stop_tx, stop) = watch::channel(false);
        self.published.push((kind, stop_tx));
        self.sfu.tasks.spawn(forward::run_forwarder(ForwarderSpec {
            sfu: self.sfu.clone(),
            publisher: self.member.clone(),
            remote,
            kind,
            rids,
            audio_level_ext: self.offer.audio_level_ext,
            closing: self.closing.subscribe(),
            stop,
        }));
    }

    async fn shutdown(mut self, reason: LeaveReason) {
        self.sfu.remove_member(&self.member);
        let _ = self.closing.send(true);
        for (_, e) in self.subs.drain() {
            if let Some(stop) = e.feedback {
                let _ = stop.send(true);
            }
            e.published.remove_subscriber(&e.sub);
        }
        if let Err(e) = bounded(self.pc.close()).await {
            tracing::debug!(participant = %self.member.id, error = %e, "close failed");
        }
        self.sfu
            .stats
            .peer_connections
            .fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(
            participant = %self.member.id,
            room = %self.member.room,
            session = %self.member.session.0,
            ?reason,
            "left"
        );
        self.member.events.send(SfuEvent::Left(reason));
    }
}

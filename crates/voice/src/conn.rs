//! One participant's connection: its str0m `Rtc`, and the negotiation around it.
//!
//! Negotiation (perfect negotiation, the SFU polite): the client makes the first offer; the
//! SFU answers. Whenever the SFU's subscriptions change it offers, once the previous
//! exchange is complete. A client offer arriving while an SFU offer is outstanding (glare)
//! wins: str0m's `accept_offer` drops our pending offer, its new m-sections are forgotten,
//! and the SFU offers them again afterwards.
//!
//! A subscription is forwarded to only once an exchange has negotiated its m-section
//! (str0m's `MediaAdded` for its mid, after the client's answer) and the connection is up:
//! what was written before would be lost, the keyframe it starts at included.

use crate::config::VoiceConfig;
use crate::engine;
use crate::error::VoiceError;
use crate::sdp::{self, OfferInfo};
use crate::sfu::Member;
use crate::track::{Renumber, Track};
use crate::types::{IceCandidate, LeaveReason, SfuEvent, TrackKind, TrackLabel};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, CodecSpec};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::{Candidate, Rtc};

/// One subscriber's copy of a published track.
pub(crate) struct Sub {
    /// Its m-section, once offered (`None`: to be offered).
    pub(crate) mid: Option<Mid>,
    /// An exchange has negotiated the m-section.
    pub(crate) ready: bool,
    /// The payload type the subscriber negotiated for the publisher's codec (`None`: it
    /// has none, and gets nothing of this track).
    pub(crate) pt: Option<Pt>,
    pub(crate) renumber: Renumber,
    kind: TrackKind,
    codec: CodecSpec,
    stream_id: String,
    track_id: String,
}

/// A participant's connection and negotiation state.
pub(crate) struct Conn {
    pub(crate) member: Arc<Member>,
    pub(crate) rtc: Rtc,
    /// Set when the connection is over; the room removes it.
    pub(crate) failed: Option<LeaveReason>,
    pub(crate) connected: bool,
    /// Removed with `IceTimeout` if not connected by then.
    pub(crate) deadline: Instant,
    pub(crate) next_timeout: Instant,
    /// Remote addresses seen, for the room's demultiplexing table.
    pub(crate) sources: Vec<SocketAddr>,
    /// The client's latest offer: which of its m-sections send what.
    pub(crate) offer: OfferInfo,
    pub(crate) subs: HashMap<u64, Sub>,
    /// Our send m-sections → the track each carries.
    pub(crate) by_mid: HashMap<Mid, u64>,
    pending: Option<SdpPendingOffer>,
    /// The m-sections the pending offer adds.
    pending_mids: Vec<Mid>,
    needs_offer: bool,
    answered: bool,
    /// Stopped m-sections still to be offered as stopped.
    retired: Vec<Mid>,
    /// m-sections of unsubscribed tracks that an outstanding offer adds: stopped once it is
    /// answered.
    retire_later: Vec<Mid>,
    candidates: Vec<String>,
    candidates_sent: bool,
}

impl Conn {
    pub(crate) fn new(
        cfg: &VoiceConfig,
        member: Arc<Member>,
        mut rtc: Rtc,
        locals: &[SocketAddr],
        now: Instant,
    ) -> Conn {
        let mut candidates = Vec::new();
        for addr in locals {
            if let Ok(c) = Candidate::host(*addr, "udp")
                && let Some(c) = rtc.add_local_candidate(c)
            {
                candidates.push(engine::announce(cfg, &c.to_sdp_string()));
            }
        }
        Conn {
            member,
            rtc,
            failed: None,
            connected: false,
            deadline: now + cfg.limits.ice_connect_timeout,
            next_timeout: now,
            sources: Vec::new(),
            offer: OfferInfo::default(),
            subs: HashMap::new(),
            by_mid: HashMap::new(),
            pending: None,
            pending_mids: Vec::new(),
            needs_offer: false,
            answered: false,
            retired: Vec::new(),
            retire_later: Vec::new(),
            candidates,
            candidates_sent: false,
        }
    }

    pub(crate) fn fail(&mut self, reason: LeaveReason) {
        self.failed.get_or_insert(reason);
    }

    fn send(&self, ev: SfuEvent) {
        self.member.events.send(ev);
    }

    /// A client offer. Errors leave the connection as it was.
    pub(crate) fn on_offer(
        &mut self,
        cfg: &VoiceConfig,
        sdp_text: &str,
        labels: &[TrackLabel],
    ) -> Result<(), VoiceError> {
        sdp::check_size(sdp_text, &cfg.limits)?;
        let parsed = sdp::parse(sdp_text)?;
        let info = sdp::inspect_offer(&parsed, labels, &cfg.limits)?;
        let first_mid = parsed
            .media_descriptions
            .first()
            .and_then(|m| m.attribute("mid").flatten())
            .map(str::to_owned);
        let ours: Vec<String> = self.by_mid.keys().map(|m| m.to_string()).collect();
        let offer = SdpOffer::from_sdp_string(&sdp::for_str0m(sdp_text, &ours))
            .map_err(|e| VoiceError::MalformedSdp(e.to_string()))?;
        if self.pending.take().is_some() {
            // Glare: the client's offer wins (str0m drops ours); ours goes again afterwards.
            self.forget_offered();
        }
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| VoiceError::MalformedSdp(e.to_string()))?;
        self.offer = info;
        self.answered = true;
        self.send(SfuEvent::Answer {
            sdp: engine::announce_sdp(cfg, answer.to_sdp_string()),
        });
        if !self.candidates_sent {
            // They are in the answer too; trickled as well for clients that look there.
            self.candidates_sent = true;
            for c in &self.candidates {
                self.send(SfuEvent::Candidate(IceCandidate {
                    candidate: c.clone(),
                    sdp_mid: first_mid.clone(),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                }));
            }
        }
        self.maybe_offer(cfg);
        Ok(())
    }

    /// The client's answer to our offer. Returns the tracks whose subscriptions it made
    /// ready.
    pub(crate) fn on_answer(
        &mut self,
        cfg: &VoiceConfig,
        sdp_text: &str,
    ) -> Result<Vec<u64>, VoiceError> {
        if self.pending.is_none() {
            return Err(VoiceError::NoPendingOffer);
        }
        sdp::check_size(sdp_text, &cfg.limits)?;
        sdp::parse(sdp_text)?;
        let answer = SdpAnswer::from_sdp_string(sdp_text)
            .map_err(|e| VoiceError::MalformedSdp(e.to_string()))?;
        let Some(pending) = self.pending.take() else {
            return Err(VoiceError::NoPendingOffer);
        };
        if let Err(e) = self.rtc.sdp_api().accept_answer(pending, answer) {
            // Our offer is withdrawn; a fresh one goes out, which the client answers instead.
            self.forget_offered();
            self.maybe_offer(cfg);
            return Err(VoiceError::MalformedSdp(e.to_string()));
        }
        // str0m announces no `MediaAdded` for m-sections it offered: they are ready now.
        let ready = std::mem::take(&mut self.pending_mids)
            .into_iter()
            .filter_map(|mid| self.negotiated(mid))
            .collect();
        self.maybe_offer(cfg);
        Ok(ready)
    }

    /// A trickled client candidate.
    pub(crate) fn on_candidate(&mut self, c: &IceCandidate) -> Result<(), VoiceError> {
        if c.candidate.is_empty() {
            return Ok(()); // end of candidates
        }
        if c.candidate.len() > 1024 {
            return Err(VoiceError::BadCandidate("too long".into()));
        }
        let text = c.candidate.strip_prefix("a=").unwrap_or(&c.candidate);
        let cand = Candidate::from_sdp_string(text)
            .map_err(|e| VoiceError::BadCandidate(e.to_string()))?;
        self.rtc.add_remote_candidate(cand);
        Ok(())
    }

    /// The m-sections of an offer that was not answered are gone: offer them again.
    fn forget_offered(&mut self) {
        for sub in self.subs.values_mut() {
            if !sub.ready
                && let Some(mid) = sub.mid.take()
            {
                self.by_mid.remove(&mid);
            }
        }
        // Retirements of m-sections that offer added are moot: they never existed.
        self.retire_later.clear();
        self.pending_mids.clear();
        self.needs_offer = true;
    }

    /// An m-section of ours an exchange negotiated. Returns the track whose subscription it
    /// makes ready.
    fn negotiated(&mut self, mid: Mid) -> Option<u64> {
        if let Some(i) = self.retire_later.iter().position(|m| *m == mid) {
            self.retire_later.swap_remove(i);
            self.retired.push(mid);
            self.needs_offer = true;
            return None;
        }
        let id = *self.by_mid.get(&mid)?;
        let sub = self.subs.get_mut(&id)?;
        sub.ready = true;
        sub.pt = payload_type(&self.rtc, mid, &sub.codec);
        if sub.pt.is_none() {
            tracing::debug!(participant = %self.member.id, ?mid, "subscriber has no payload type for the codec");
        }
        // What the SFU forwards was paced by its publisher; str0m's pacer would hold audio
        // behind video at the estimate (the reason Hearth's webrtc-rs SFU had no pacer).
        if let Some(tx) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
            tx.set_unpaced(true);
        }
        Some(id)
    }

    /// Subscribes to a track published in the room.
    pub(crate) fn subscribe(&mut self, cfg: &VoiceConfig, track: &Track, now: Instant) {
        if self.subs.contains_key(&track.id) {
            return;
        }
        self.subs.insert(
            track.id,
            Sub {
                mid: None,
                ready: false,
                pt: None,
                renumber: Renumber::new(now),
                kind: track.kind,
                codec: track.codec,
                stream_id: track.stream_id.clone(),
                track_id: track.track_id.clone(),
            },
        );
        self.send(SfuEvent::TrackPublished {
            participant: track.publisher.id,
            kind: track.kind,
            stream_id: track.stream_id.clone(),
            track_id: track.track_id.clone(),
        });
        self.needs_offer = true;
        self.maybe_offer(cfg);
    }

    /// The track went away: its m-section stops in the next offer.
    pub(crate) fn unsubscribe(&mut self, cfg: &VoiceConfig, track: &Track) {
        let Some(sub) = self.subs.remove(&track.id) else {
            return;
        };
        if let Some(mid) = sub.mid {
            self.by_mid.remove(&mid);
            if sub.ready {
                self.retired.push(mid);
            } else {
                self.retire_later.push(mid);
            }
        }
        self.send(SfuEvent::TrackUnpublished {
            participant: track.publisher.id,
            kind: track.kind,
            track_id: track.track_id.clone(),
        });
        self.needs_offer = true;
        self.maybe_offer(cfg);
    }

    /// Offers what changed, unless an exchange is under way (then after it).
    pub(crate) fn maybe_offer(&mut self, cfg: &VoiceConfig) {
        if !self.needs_offer || !self.answered || self.pending.is_some() {
            return;
        }
        self.needs_offer = false;
        let mut api = self.rtc.sdp_api();
        for (id, sub) in self.subs.iter_mut() {
            if sub.mid.is_none() {
                let kind = if sub.kind.is_audio() {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                let mid = api.add_media(
                    kind,
                    Direction::SendOnly,
                    Some(sub.stream_id.clone()),
                    Some(sub.track_id.clone()),
                    None,
                );
                sub.mid = Some(mid);
                self.by_mid.insert(mid, *id);
                self.pending_mids.push(mid);
            }
        }
        for mid in self.retired.drain(..) {
            api.stop_media(mid);
        }
        if let Some((offer, pending)) = api.apply() {
            self.pending = Some(pending);
            self.send(SfuEvent::Offer {
                sdp: engine::announce_sdp(cfg, offer.to_sdp_string()),
            });
        }
    }
}

/// The payload type a subscriber's m-section negotiated for a codec: the same codec (for
/// H.264 the same profile and packetization mode if it has them, else any).
fn payload_type(rtc: &Rtc, mid: Mid, spec: &CodecSpec) -> Option<Pt> {
    let media = rtc.media(mid)?;
    let config = rtc.codec_config();
    let matching: Vec<(Pt, CodecSpec)> = media
        .remote_pts()
        .iter()
        .filter_map(|pt| config.find(|p| p.pt() == *pt).map(|p| (*pt, p.spec())))
        .filter(|(_, s)| s.codec == spec.codec && s.clock_rate == spec.clock_rate)
        .collect();
    let exact = |s: &CodecSpec| {
        spec.codec != Codec::H264
            || (s.format.profile_level_id == spec.format.profile_level_id
                && s.format.packetization_mode == spec.format.packetization_mode)
    };
    matching
        .iter()
        .find(|(_, s)| exact(s))
        .or(matching.first())
        .map(|(pt, _)| *pt)
}

//! How each peer connection is built: codecs, header extensions, interceptors, ICE
//! settings. One place, so every participant's connection is the same.

use crate::config::VoiceConfig;
use crate::error::VoiceError;
use rtc::interceptor::{
    Attribute, BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Interceptor,
    LossController, OveruseDetector, Packet, PacketReport, RateCalculator, RateControlState,
    RateController, SlopeEstimator, Slot, StreamInfo, TaggedPacket, TwccReceiverBuilder,
    TwccSenderBuilder,
};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::{SettingEngine, SettingEngineBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use webrtc::peer_connection::Registry;

/// What the send-side estimator says about one subscriber's downlink.
#[derive(Debug, Default)]
pub(crate) struct Downlink {
    /// The estimate, bits/s (0 until the first feedback).
    pub(crate) target: AtomicU64,
    /// How many times the estimator has found the path congested: a delay-based backoff
    /// (queueing delay growing) or a loss-based one (more than 10 % lost).
    pub(crate) congestion: AtomicU64,
}

/// The media engine and interceptor chain of one peer connection; `downlink` receives the
/// send-side bandwidth estimate when estimation is on.
pub(crate) fn media_and_interceptors(
    cfg: &VoiceConfig,
    downlink: Arc<Downlink>,
) -> Result<(MediaEngine, Registry), VoiceError> {
    let mut me = MediaEngine::default();
    me.register_default_codecs().map_err(VoiceError::webrtc)?;
    me.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(VoiceError::webrtc)?;
    // NACK (with RTX where negotiated), RTCP reports, the simulcast header extensions
    // (mid, rid, repaired rid) and TWCC feedback for what we receive.
    let mut registry =
        register_default_interceptors(Registry::new(), &mut me).map_err(VoiceError::webrtc)?;
    if cfg.bandwidth_estimation {
        let estimator = Estimator::new(1_000_000.0, 100_000.0, 20_000_000.0, downlink);
        registry = estimation(registry, estimator, &mut me)?;
    }
    // Hand keyframe requests and REMB from subscribers to the forwarders.
    Ok((me, feedback_to_app(registry)))
}

/// Adds [`FeedbackToApp`] nearest the application (the chain stops inbound RTCP otherwise).
pub(crate) fn feedback_to_app(registry: Registry) -> Registry {
    registry.with(Slot::from(14_000), FeedbackToApp::default())
}

/// Send-side bandwidth estimation from TWCC feedback, without a pacer.
///
/// webrtc-rs's `configure_congestion_control` also installs a pacer that releases what we
/// send at the estimate, from a 4,096-packet queue shared by audio and video. For an SFU
/// that is the wrong tool: what it forwards was paced by each publisher already, and the
/// estimate exists to choose each subscriber's simulcast layer (`layers.rs`), which keeps
/// what is sent under it. Paced, a subscriber's audio waited behind video while GCC
/// climbed from its 1 Mbit/s start with no probing: the load generator's 8-person video
/// room needed a 30 s warm-up before its latency settled, and a 16-person one (2.8 Mbit/s
/// per thumbnail viewer) never did: the queue filled, dropped, and the retransmissions
/// arrived seconds late (`docs/benchmarks.md`, voice-video). So this registers what the
/// estimate needs and nothing that holds packets back.
fn estimation<E: BandwidthEstimator + 'static>(
    registry: Registry,
    estimator: E,
    me: &mut MediaEngine,
) -> Result<Registry, VoiceError> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        // The remote reports what it received (transport-cc feedback) against the
        // transport-wide sequence number this header extension carries.
        me.register_feedback(
            RTCPFeedback {
                typ: "transport-cc".to_owned(),
                parameter: String::new(),
            },
            kind,
        );
        me.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )
        .map_err(VoiceError::webrtc)?;
    }
    Ok(registry
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(estimator).build(),
        )
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
        .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build()))
}

/// ICE settings. (NAT 1:1 addresses are not set here: webrtc-rs 0.21 keeps
/// `with_nat_1to1_ips` but nothing reads it, so [`announce`] rewrites our candidates.)
pub(crate) fn settings(cfg: &VoiceConfig) -> SettingEngine {
    let mut b = SettingEngineBuilder::new()
        // Disconnected after 5 s of silence, failed 10 s later: a vanished client is
        // removed in 15 s (the ICE connect timeout covers one that never arrives).
        .with_ice_timeouts(
            Some(Duration::from_secs(5)),
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(2)),
        );
    if cfg.host_addresses.iter().any(|a| a.is_loopback()) {
        b = b.with_include_loopback_candidate(true);
    }
    b.build()
}

/// Google Congestion Control assembled from webrtc-rs's own stages, the way its `Gcc` does
/// (delay: arrival-time slope → overuse detector → AIMD rate control; loss: its own
/// controller; the lower of the two wins), publishing the estimate and every congestion
/// decision to the forwarders.
///
/// `Gcc` reports only a number, and the number alone cannot tell the layer chooser
/// (`layers.rs`) that a path is congested: a backoff sets the estimate to 85 % of what
/// *arrived*, which after stepping a subscriber up to a bigger layer can be higher than the
/// estimate was before. Without padding probes the estimate also trails what is actually
/// sent, so "estimate below the layer's rate" is not a congestion signal either.
struct Estimator {
    slope: SlopeEstimator,
    detector: OveruseDetector,
    received: RateCalculator,
    delay: RateController,
    loss: LossController,
    min: f64,
    max: f64,
    target: f64,
    out: Arc<Downlink>,
}

impl Estimator {
    fn new(initial: f64, min: f64, max: f64, out: Arc<Downlink>) -> Estimator {
        let initial = initial.clamp(min, max);
        Estimator {
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            received: RateCalculator::default(),
            delay: RateController::new(initial, min, max),
            loss: LossController::new(initial, min, max),
            min,
            max,
            target: initial,
            out,
        }
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let mut usage = self.detector.usage();
        for report in reports {
            if report.arrived {
                self.received.add(now, report.size);
            }
            if let Some(trend) = self.slope.accumulate(report) {
                usage = self.detector.update(trend.at, trend.estimate_ms);
            }
        }
        let received = self.received.rate_bits_per_second(now);
        let delay_target = self.delay.update(now, usage, received);
        // The controller backs off only when it knows what arrived.
        let delay_backoff = self.delay.state() == RateControlState::Decrease && received.is_some();
        let loss_before = self.loss.target();
        let lost = reports.iter().filter(|r| !r.arrived).count();
        let loss_target = self.loss.update(now, lost, reports.len());
        self.target = delay_target.min(loss_target).clamp(self.min, self.max);
        self.out.target.store(self.target as u64, Ordering::Relaxed);
        if delay_backoff || loss_target < loss_before {
            // Release: whoever sees the new count sees the estimate that came with it.
            self.out.congestion.fetch_add(1, Ordering::Release);
        }
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = EstimatorStats::default();
        stats.delay_based_bitrate = Some(self.delay.target());
        stats.loss_based_bitrate = Some(self.loss.target());
        stats.packet_loss = self.loss.average_loss();
        stats
    }
}

/// Marks PLI, FIR and REMB for delivery to the application (the sender's `TrackLocal`).
/// Also on the client peer ([`crate::peer::client_hearing_feedback`]), whose cameras answer
/// keyframe requests as a browser's encoder does.
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

/// A candidate as the client should see it: a bound host address replaced by its public
/// address (`public_ips[i]` for `host_addresses[i]`, or the only public address).
pub(crate) fn announce(cfg: &VoiceConfig, candidate: &str) -> String {
    if cfg.public_ips.is_empty() {
        return candidate.to_owned();
    }
    let mut parts: Vec<&str> = candidate.split(' ').collect();
    let mapped = parts
        .get(4)
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .and_then(|ip| {
            let i = cfg.host_addresses.iter().position(|h| *h == ip)?;
            cfg.public_ips
                .get(i)
                .or(cfg.public_ips.last())
                .map(|p| p.to_string())
        });
    match mapped {
        Some(public) => {
            parts[4] = &public;
            parts.join(" ")
        }
        None => candidate.to_owned(),
    }
}

/// [`announce`] over the candidate lines of an SDP.
pub(crate) fn announce_sdp(cfg: &VoiceConfig, sdp: String) -> String {
    let sdp = crate::sdp::tidy(&sdp);
    if cfg.public_ips.is_empty() {
        return sdp;
    }
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive("\r\n") {
        match line.strip_prefix("a=") {
            Some(c) if c.starts_with("candidate:") => {
                out.push_str("a=");
                out.push_str(&announce(cfg, c.trim_end_matches("\r\n")));
                out.push_str("\r\n");
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_replace_bound_ones() {
        let cfg = VoiceConfig {
            host_addresses: vec![[10, 0, 0, 5].into()],
            public_ips: vec![[203, 0, 113, 7].into()],
            ..VoiceConfig::default()
        };
        let c = "candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host";
        assert_eq!(
            announce(&cfg, c),
            "candidate:1 1 udp 2130706431 203.0.113.7 40000 typ host"
        );
        let sdp = format!("v=0\r\na={c}\r\na=mid:0\r\n");
        assert_eq!(
            announce_sdp(&cfg, sdp),
            "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.7 40000 typ host\r\na=mid:0\r\n"
        );
        let other = "candidate:1 1 udp 2130706431 10.0.0.9 40000 typ host";
        assert_eq!(announce(&cfg, other), other);
    }
}

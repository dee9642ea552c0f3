//! How each participant's connection is built (codecs, header extensions, estimation,
//! crypto), and how our candidates are announced. One place, so every connection is the
//! same.

use crate::config::VoiceConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use str0m::bwe::Bitrate;
use str0m::config::CryptoProvider;
use str0m::{Rtc, RtcConfig};

/// The bandwidth estimate a connection starts from before any feedback.
const INITIAL_ESTIMATE_KBPS: u64 = 1_000;

/// What the send-side estimator says about one subscriber's downlink.
#[derive(Debug, Default)]
pub(crate) struct Downlink {
    /// The estimate, bits/s (0 until the first feedback).
    pub(crate) target: AtomicU64,
    /// How many times the estimate has fallen (a delay- or loss-based backoff). The layer
    /// chooser (`layers.rs`) steps a subscriber down only on a new one: without probing
    /// the estimate trails what is sent, so "below the layer's rate" alone is no signal.
    pub(crate) congestion: AtomicU64,
}

impl Downlink {
    /// A new estimate from str0m's TWCC-based estimator.
    pub(crate) fn update(&self, bps: u64) {
        let before = self.target.swap(bps, Ordering::Relaxed);
        // str0m reports on every change; a fall of more than 5 % is a backoff, not noise.
        if before > 0 && bps < before - before / 20 {
            // Release: whoever sees the new count sees the estimate that came with it.
            self.congestion.fetch_add(1, Ordering::Release);
        }
    }
}

/// One participant's `Rtc`.
///
/// - RTP mode: packets are forwarded as they come (no depacketizing), renumbered by
///   `track.rs`; str0m still answers NACKs from its send buffers (video is written
///   nackable), sends NACKs for what we receive, and does RTCP.
/// - Codecs: Opus, VP8 and H.264 (the brief's), with str0m's RTX and feedback settings.
/// - Header extensions: str0m's standard map, which has the audio level (RFC 6464), mid,
///   rid and repaired rid (simulcast), transport-wide sequence numbers and abs-send-time.
/// - Send-side estimation (TWCC) when configured: it chooses simulcast layers. Our send
///   streams are unpaced (`room.rs`), so the estimator never holds a packet back.
pub(crate) fn rtc(cfg: &VoiceConfig, crypto: &Arc<CryptoProvider>, now: Instant) -> Rtc {
    let mut b = RtcConfig::new()
        .set_crypto_provider(crypto.clone())
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true)
        .enable_vp8(true)
        .enable_h264(true);
    if cfg.bandwidth_estimation {
        b = b.enable_bwe(Some(Bitrate::kbps(INITIAL_ESTIMATE_KBPS)));
    }
    b.build(now)
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
    fn a_fall_of_the_estimate_counts_as_congestion() {
        let d = Downlink::default();
        d.update(1_000_000);
        d.update(1_100_000);
        d.update(1_080_000); // noise
        assert_eq!(d.congestion.load(Ordering::Acquire), 0);
        d.update(900_000);
        assert_eq!(d.congestion.load(Ordering::Acquire), 1);
        assert_eq!(d.target.load(Ordering::Relaxed), 900_000);
    }

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

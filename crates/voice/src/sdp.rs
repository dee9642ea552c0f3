//! Checks on client SDP before str0m sees it (size, parse, what the client sends: how many
//! tracks of each kind, which is which), and the two edits made to a client offer.

use crate::config::Limits;
use crate::error::VoiceError;
use crate::types::{TrackKind, TrackLabel};
use rtc::sdp::description::session::SessionDescription;
use rtc::sdp::extmap::AUDIO_LEVEL_URI;
use std::io::Cursor;

/// A sending m-section of a client offer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sending {
    pub(crate) mid: String,
    pub(crate) kind: TrackKind,
    /// The msid track id, which webrtc-rs reports as the remote track's id.
    pub(crate) track_id: Option<String>,
    /// Simulcast rids it sends, in the offer's order.
    pub(crate) rids: Vec<String>,
}

/// What an offer says about the client's publications.
#[derive(Debug, Clone, Default)]
pub(crate) struct OfferInfo {
    pub(crate) sending: Vec<Sending>,
    pub(crate) audio_level_ext: Option<u8>,
}

pub(crate) fn check_size(sdp: &str, limits: &Limits) -> Result<(), VoiceError> {
    if sdp.len() > limits.max_sdp_bytes {
        return Err(VoiceError::SdpTooLarge {
            size: sdp.len(),
            limit: limits.max_sdp_bytes,
        });
    }
    Ok(())
}

pub(crate) fn parse(sdp: &str) -> Result<SessionDescription, VoiceError> {
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| VoiceError::MalformedSdp(e.to_string()))?;
    if parsed.media_descriptions.is_empty() {
        return Err(VoiceError::MalformedSdp("no m-sections".into()));
    }
    for m in &parsed.media_descriptions {
        let mid = m.attribute("mid").flatten();
        if mid.is_none_or(str::is_empty) {
            return Err(VoiceError::MalformedSdp("an m-section has no mid".into()));
        }
    }
    // str0m closes a connection whose SDP lacks these; refuse it here instead.
    let has = |key: &str| {
        parsed.attribute(key).is_some()
            || parsed
                .media_descriptions
                .iter()
                .any(|m| m.attributes.iter().any(|a| a.key == key))
    };
    for key in ["fingerprint", "ice-ufrag", "ice-pwd"] {
        if !has(key) {
            return Err(VoiceError::MalformedSdp(format!("no a={key}")));
        }
    }
    Ok(parsed)
}

/// Reads and checks an offer: its sending sections, labelled, within the limits.
pub(crate) fn inspect_offer(
    parsed: &SessionDescription,
    labels: &[TrackLabel],
    limits: &Limits,
) -> Result<OfferInfo, VoiceError> {
    let mut info = OfferInfo::default();
    let mut videos = 0usize;
    let mut audios = 0usize;
    for m in &parsed.media_descriptions {
        let media = m.media_name.media.as_str();
        if media != "audio" && media != "video" {
            continue;
        }
        let mid = m.attribute("mid").flatten().unwrap_or_default().to_owned();
        if media == "audio" && info.audio_level_ext.is_none() {
            info.audio_level_ext = m
                .attributes
                .iter()
                .filter(|a| a.key == "extmap")
                .filter_map(|a| a.value.as_deref())
                .find_map(|v| {
                    let mut parts = v.split_whitespace();
                    let id = parts.next()?.split('/').next()?.parse::<u8>().ok()?;
                    (parts.next()? == AUDIO_LEVEL_URI).then_some(id)
                });
        }
        let sends = m.media_name.port.value != 0
            && !m
                .attributes
                .iter()
                .any(|a| a.key == "recvonly" || a.key == "inactive");
        if !sends {
            continue;
        }
        let label = labels.iter().find(|l| l.mid == mid).map(|l| l.kind);
        let kind = match (media, label) {
            ("audio", _) => TrackKind::Audio,
            (_, Some(TrackKind::Audio)) => {
                return Err(VoiceError::MalformedSdp(format!(
                    "mid {mid} is video, labelled audio"
                )));
            }
            (_, Some(k)) => k,
            // Unlabelled video: the camera, unless another section is (labelled) the camera.
            (_, None) => {
                let camera_taken = labels
                    .iter()
                    .any(|l| l.kind == TrackKind::Camera && l.mid != mid)
                    || info.sending.iter().any(|s| s.kind == TrackKind::Camera);
                if camera_taken {
                    TrackKind::Screen
                } else {
                    TrackKind::Camera
                }
            }
        };
        if kind.is_audio() {
            audios += 1;
        } else {
            videos += 1;
        }
        let track_id = m
            .attribute("msid")
            .flatten()
            .and_then(|v| v.split_whitespace().nth(1))
            .map(str::to_owned);
        let rids = m
            .attributes
            .iter()
            .filter(|a| a.key == "rid")
            .filter_map(|a| a.value.as_deref())
            .filter_map(|v| {
                let mut parts = v.split_whitespace();
                let id = parts.next()?;
                (parts.next()? == "send").then(|| id.to_owned())
            })
            .collect();
        info.sending.push(Sending {
            mid,
            kind,
            track_id,
            rids,
        });
    }
    if audios > limits.max_audio_tracks {
        return Err(VoiceError::TooManyTracks {
            kind: TrackKind::Audio,
            count: audios,
            limit: limits.max_audio_tracks,
        });
    }
    if videos > limits.max_video_tracks {
        return Err(VoiceError::TooManyTracks {
            kind: TrackKind::Camera,
            count: videos,
            limit: limits.max_video_tracks,
        });
    }
    let cameras = info
        .sending
        .iter()
        .filter(|s| s.kind == TrackKind::Camera)
        .count();
    let screens = info
        .sending
        .iter()
        .filter(|s| s.kind == TrackKind::Screen)
        .count();
    if cameras > 1 || screens > 1 {
        let kind = if cameras > 1 {
            TrackKind::Camera
        } else {
            TrackKind::Screen
        };
        return Err(VoiceError::TooManyTracks {
            kind,
            count: cameras.max(screens),
            limit: 1,
        });
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1 2\r\na=fingerprint:sha-256 AB:CD\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
        a=msid:s a\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\na=msid:s v\r\na=rtpmap:96 VP8/90000\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";

    #[test]
    fn reads_sending_sections() {
        let parsed = parse(OFFER).expect("parses");
        let info = inspect_offer(&parsed, &[], &Limits::default()).expect("within limits");
        assert_eq!(info.audio_level_ext, Some(1));
        assert_eq!(info.sending.len(), 2);
        assert_eq!(info.sending[1].kind, TrackKind::Camera);
        assert_eq!(info.sending[1].track_id.as_deref(), Some("v"));
        let labels = [TrackLabel {
            mid: "1".into(),
            kind: TrackKind::Screen,
        }];
        let info = inspect_offer(&parsed, &labels, &Limits::default()).expect("within limits");
        assert_eq!(info.sending[1].kind, TrackKind::Screen);
        let limits = Limits {
            max_video_tracks: 0,
            ..Limits::default()
        };
        assert!(matches!(
            inspect_offer(&parsed, &[], &limits),
            Err(VoiceError::TooManyTracks { .. })
        ));
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(parse("hello"), Err(VoiceError::MalformedSdp(_))));
        assert!(matches!(
            check_size(&"x".repeat(70_000), &Limits::default()),
            Err(VoiceError::SdpTooLarge { .. })
        ));
    }
}

/// A client offer as str0m should read it:
///
/// - `a=setup:actpass` becomes `passive`, so the SFU answers as the DTLS client. As the
///   DTLS server it would wait for the client to nominate a candidate pair before the
///   handshake, which webrtc-rs does on a 200 ms tick (joins took ~515 ms instead of ~310;
///   docs/benchmarks.md, "Another WebRTC stack").
/// - A `recvonly` m-section the SFU did not create (a listener's placeholder, see the crate
///   docs) becomes `inactive`: the SFU sends on m-sections it offers itself, and a browser
///   would otherwise fire `ontrack` for a track that never carries anything.
pub(crate) fn for_str0m(sdp: &str, ours: &[String]) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut section: Vec<&str> = Vec::new();
    let flush = |section: &mut Vec<&str>, out: &mut String| {
        let mid = section
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(str::trim_end);
        let placeholder = section.first().is_some_and(|l| l.starts_with("m="))
            && mid.is_some_and(|m| !ours.iter().any(|o| o == m));
        for l in section.drain(..) {
            if l.trim_end() == "a=setup:actpass" {
                out.push_str("a=setup:passive\r\n");
            } else if placeholder && l.trim_end() == "a=recvonly" {
                out.push_str("a=inactive\r\n");
            } else {
                out.push_str(l.trim_end_matches(['\r', '\n']));
                out.push_str("\r\n");
            }
        }
    };
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") {
            flush(&mut section, &mut out);
        }
        section.push(line);
    }
    flush(&mut section, &mut out);
    out
}

#[cfg(test)]
mod offer_edit_tests {
    use super::for_str0m;

    #[test]
    fn answers_as_dtls_client_and_idles_placeholders() {
        let sdp = "v=0\r\ns=-\r\na=setup:actpass\r\nm=audio 9 X 111\r\na=mid:0\r\na=sendonly\r\n\
m=audio 9 X 111\r\na=mid:1\r\na=recvonly\r\nm=video 9 X 96\r\na=mid:5\r\na=setup:actpass\r\na=recvonly\n";
        let want = "v=0\r\ns=-\r\na=setup:passive\r\nm=audio 9 X 111\r\na=mid:0\r\na=sendonly\r\n\
m=audio 9 X 111\r\na=mid:1\r\na=inactive\r\nm=video 9 X 96\r\na=mid:5\r\na=setup:passive\r\na=recvonly\r\n";
        assert_eq!(for_str0m(sdp, &["5".to_owned()]), want);
    }
}

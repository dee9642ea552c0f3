//! Checks on client SDP before webrtc-rs sees it: size, parse, and what the client sends
//! (how many tracks of each kind, which is which).

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
        a=group:BUNDLE 0 1 2\r\n\
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

/// Repairs what webrtc-rs 0.21 may write into an answer's m-sections when the offer lists
/// more variants of a codec than the media engine has (a browser's VP9 profile 0 and 2,
/// several H.264 profiles): a payload type listed twice (with its attribute lines twice),
/// and RTX payload types whose `apt` names a payload type the section does not carry.
/// Browsers refuse such an answer ("Failed to set remote video description send
/// parameters"). Sections are otherwise left untouched.
pub(crate) fn tidy(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut section: Vec<&str> = Vec::new();
    for line in sdp.split_inclusive("\r\n") {
        if line.starts_with("m=") {
            tidy_section(&section, &mut out);
            section.clear();
        }
        section.push(line);
    }
    tidy_section(&section, &mut out);
    out
}

fn pt_of<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(prefix)?;
    let end = rest.find([' ', '\r', '\n']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn tidy_section(lines: &[&str], out: &mut String) {
    let Some(first) = lines.first() else { return };
    if !first.starts_with("m=") {
        lines.iter().for_each(|l| out.push_str(l));
        return;
    }
    let m = first.trim_end_matches("\r\n");
    let parts: Vec<&str> = m.split(' ').collect();
    if parts.len() < 4 {
        lines.iter().for_each(|l| out.push_str(l));
        return;
    }
    // Payload types in order, once each.
    let mut pts: Vec<&str> = Vec::new();
    for p in &parts[3..] {
        if !pts.contains(p) {
            pts.push(p);
        }
    }
    // RTX whose apt is not carried.
    let mut drop: Vec<String> = Vec::new();
    for l in lines {
        if let Some(pt) = pt_of(l, "a=fmtp:")
            && let Some(apt) = l.trim_end().split("apt=").nth(1)
        {
            let apt = apt.split(';').next().unwrap_or("").trim();
            let is_rtx = lines
                .iter()
                .any(|r| pt_of(r, "a=rtpmap:") == Some(pt) && r.contains(" rtx/"));
            if is_rtx && !pts.contains(&apt) {
                drop.push(pt.to_owned());
            }
        }
    }
    pts.retain(|p| !drop.iter().any(|d| d == p));
    if pts.is_empty() {
        // Nothing sensible to repair into; leave it as webrtc-rs wrote it.
        lines.iter().for_each(|l| out.push_str(l));
        return;
    }
    out.push_str(&parts[..3].join(" "));
    for p in &pts {
        out.push(' ');
        out.push_str(p);
    }
    out.push_str("\r\n");
    let mut seen: Vec<&str> = Vec::new();
    for l in &lines[1..] {
        let pt = pt_of(l, "a=rtpmap:")
            .or_else(|| pt_of(l, "a=fmtp:"))
            .or_else(|| pt_of(l, "a=rtcp-fb:"));
        if let Some(pt) = pt {
            if drop.iter().any(|d| d == pt) || seen.contains(l) {
                continue;
            }
            seen.push(l);
        }
        out.push_str(l);
    }
}

#[cfg(test)]
mod tidy_tests {
    use super::tidy;

    #[test]
    fn removes_duplicate_payload_types_and_orphan_rtx() {
        let sdp = "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 98 98 97 36\r\na=mid:3\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\n\
a=rtcp-fb:98 nack\r\na=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\na=rtcp-fb:98 nack\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:36 rtx/90000\r\na=fmtp:36 apt=35\r\n\
a=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        let want = "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 98 97\r\na=mid:3\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\n\
a=rtcp-fb:98 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(tidy(sdp), want);
        // A clean SDP is unchanged.
        assert_eq!(tidy(want), want);
    }
}
